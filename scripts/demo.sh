#!/usr/bin/env bash
# Set everything up and render a small rare-condition demo dataset per scenario into demo_out/.
# Usage: scripts/demo.sh [FRAMES]   (default 8 frames per scenario, 640x384)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
FRAMES=${1:-8}
for scenario in deer_on_dark_road night_jaywalker dense_fog_highway fallen_cargo pedestrian_behind_bus; do
  .venv/bin/longtail render --scenario "$scenario" --frames "$FRAMES" --seed 2026 \
    --workers 2 --out "demo_out/$scenario" --preview "demo_out/$scenario.png"
done
.venv/bin/longtail verify demo_out/fallen_cargo
echo "Demo datasets are in demo_out/ (RGB, depth, instance, semantic PNGs, labels/*.json, coco.json,"
echo "manifest.json), with a preview image of each next to it."
