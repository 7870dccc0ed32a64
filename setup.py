"""Builds the C kernels (kernels/_bm25.c) at install time; everything else is in pyproject.toml."""
from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("kernels._bm25", sources=["kernels/_bm25.c"], extra_compile_args=["-O3", "-std=c99"]),
    ]
)
