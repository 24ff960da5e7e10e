"""Benchmarks for baoflow. Run from the project root, e.g. ``python -m bench.fire``."""
