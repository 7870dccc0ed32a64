"""adarag: kernels."""
