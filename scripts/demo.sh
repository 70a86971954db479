#!/usr/bin/env bash
# The main job in one go: built-in demo data -> teacher -> compressed generator -> report.
#   bash scripts/demo.sh [WORK_DIR]        (default runs/demo; rerun to resume)
# It prints its own wall time at the end (README states the measured figure). Set
# GANCOMPRESS_THREADS=2 on an idle machine.
set -euo pipefail
start=$(date +%s)
cd "$(dirname "$0")/.."
WORK=${1:-runs/demo}
bash scripts/setup.sh  # installs .venv on a fresh machine (quick when already there)
THREADS=${GANCOMPRESS_THREADS:-1}
gc() { .venv/bin/python -m gancompress "$@"; }

if [ ! -d "$WORK/data" ]; then
  gc demo-data --out "$WORK/data"
fi
if [ ! -f "$WORK/teacher/generator.pth" ]; then
  resume=()
  [ -f "$WORK/teacher/config.json" ] && resume=(--resume)
  gc train --preset demo --data "$WORK/data" --out "$WORK/teacher" "${resume[@]}" \
    train.threads="$THREADS"
fi
# Budget 1/10 of the teacher's MACs (set in the demo preset); prints the report at the end.
gc compress --teacher "$WORK/teacher/generator.pth" --data "$WORK/data" --preset demo \
  --out "$WORK/compressed" train.threads="$THREADS"
echo "report: $WORK/compressed/report/report.md (grid: $WORK/compressed/report/grid.png)"
echo "scripts/demo.sh took $(( ($(date +%s) - start + 30) / 60 )) min (this run; resumed parts not counted)"
