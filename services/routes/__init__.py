"""One route module per resource: ask, search, documents, openai (Chat Completions, models), page (the
web page at /), ops (health, readiness, metrics)."""
