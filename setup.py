"""Builds the C kernels (kernels/_bm25.c, kernels/_fm.c) at install time; everything else is in pyproject.toml."""
from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("kernels._bm25", sources=["kernels/_bm25.c"], extra_compile_args=["-O3", "-std=c99"]),
        Extension("kernels._fm", sources=["kernels/_fm.c"], extra_compile_args=["-O3", "-std=c99"]),
    ]
)
