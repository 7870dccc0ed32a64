"""adarag: retrievers."""
