"""Benchmark sections that live outside ``benchmarks/run.py`` (imported by it)."""
