#!/usr/bin/env bash
# Create .venv (if missing) and install gancompress with the pinned CPU PyTorch.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
.venv/bin/python -m pip install -q -c constraints.txt -e ".[dev,demo,openvino,docs]"
# The demo's browser tests drive the system Chromium (Debian packages; never a browser download).
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    (apt-get update -q && apt-get install -y -q chromium chromium-driver) >/dev/null 2>&1 ||
      echo "setup.sh: could not install chromium (the browser tests will fail)" >&2
  elif command -v apt-get >/dev/null 2>&1 && command -v sudo >/dev/null 2>&1; then
    (sudo -n apt-get update -q && sudo -n apt-get install -y -q chromium chromium-driver) \
      >/dev/null 2>&1 || echo "setup.sh: could not install chromium (the browser tests will fail)" >&2
  fi
fi
