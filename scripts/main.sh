#!/usr/bin/env bash
# The main job on the built-in defaults. Until the PPO trainer lands (issue 3) this flies every task with
# the built-in observation-driven controller on randomized drones, prints the task metrics, and records a
# video of the flight to runs/demo/flight.mp4.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
mkdir -p runs/demo
.venv/bin/python - <<'PY'
import drone_sim
from drone_sim.controllers import HoverController

print(f"{'task':<10} {'episodes':>8} {'score':>7} {'crash':>6} {'aux':>22}")
for task in drone_sim.TASKS:
    env = drone_sim.make(tasks=task, num_envs=8, agents_per_env=8, seed=0, dr="default")
    ctl = HoverController(env.num_agents)
    obs, _ = env.reset()
    for _ in range(1500):
        obs, _, term, trunc, _ = env.step(ctl(obs, env.control_dt))
        ctl.reset(term | trunc)
    m = env.logs()[task]
    aux = drone_sim.config.TASK_SCORE[task][1]
    print(f"{task:<10} {m['episodes']:>8.0f} {m['score']:>7.2f} {m['crash_rate']:>6.2f} {aux:>16} {m[aux]:>5.2f}")
PY
run=( .venv/bin/drone-view --tasks all --num-envs 1 --agents 8 --controller hover --dr default --steps 1500
      --video runs/demo/flight.mp4 )
if [ -n "${DISPLAY:-}" ]; then "${run[@]}"; else xvfb-run -a -s "-screen 0 1280x800x24" "${run[@]}"; fi
echo "video: runs/demo/flight.mp4"
