#!/usr/bin/env bash
# Build the documentation site, offline: bash scripts/docs.sh [OUT_DIR]   (default site/)
# Pages: docs/*.md; Python API from the docstrings (mkdocstrings); the command-line reference is
# generated from the parser at build time (scripts/docs_cli_reference.py).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-site}
bash scripts/setup.sh  # .venv with the docs extra (quick when already there)
NO_MKDOCS_2_WARNING=1 .venv/bin/python -m mkdocs build --strict --site-dir "$OUT"
echo "docs: $OUT/index.html"
