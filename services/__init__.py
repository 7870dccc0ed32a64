"""adarag: services."""
