"""Helpers of bench/bench_quality.py (the entry script): the per-family tasks and a user-style
ResNet for the automatic-conversion comparison (issue 24 item 4)."""
