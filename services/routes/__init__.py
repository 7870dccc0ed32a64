"""One route module per resource: ask, search, documents, ops (health, readiness, metrics)."""
