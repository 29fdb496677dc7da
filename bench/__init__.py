"""Benchmarks of the bridge: `make bench` (python -m bench) writes bench/results/*.json and bench/RESULTS.md."""
