"""One route module per resource: ask, search, documents, openai (Chat Completions, models), ops (health,
readiness, metrics)."""
