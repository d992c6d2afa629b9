#!/usr/bin/env bash
# The main job on the built-in defaults: train one policy on race and swarm (drone-train with no other
# arguments), then evaluate it deterministically on both tasks, nominal and randomized drones.
# Results: runs/main/ (model.pt, metrics.csv, curves.png, summary.json). Extra arguments go to drone-train.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/drone-train --tasks race,swarm --out runs/main "$@"
.venv/bin/drone-eval runs/main/model.pt --episodes 100
