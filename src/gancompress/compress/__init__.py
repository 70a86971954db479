"""Compression wing: distillation, search spaces, budgets, scoring, search, the stage pipeline."""
