"""adarag: indexers."""
