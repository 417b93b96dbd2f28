"""Benchmarks of c2c against baselines measured in the same run (see bench/README.md)."""
