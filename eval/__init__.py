"""adarag: eval."""
