"""Benchmarks: they measure and report; they never decide pass or fail."""
