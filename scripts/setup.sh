#!/usr/bin/env bash
# Set-up on a fresh machine: system packages (a C compiler, Xvfb and xdotool for the viewer tests, PostgreSQL's
# binaries for the sweep tests), a virtual
# environment in .venv, and the project installed in it (this compiles the C simulator).
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v gcc >/dev/null 2>&1 || need+=(gcc)
command -v Xvfb >/dev/null 2>&1 || need+=(xvfb)
command -v xdotool >/dev/null 2>&1 || need+=(xdotool)
# PostgreSQL's server binaries: tests/test_sweep.py starts a real server from them in a temporary directory
# (drone-sweep's --storage postgresql://...); nothing is started here
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || need+=(postgresql)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "installing system packages: ${need[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
# PyTorch first, pinned: on the CPU-only machines this project targets, that version is a CPU build
# (an unpinned torch would pull a multi-GB CUDA build). Where it is already installed this does nothing.
.venv/bin/python -c "import torch" 2>/dev/null || .venv/bin/python -m pip install -q "torch==2.13.0"
.venv/bin/python -m pip install -q -e ".[test]"
# MAVProxy, the ground station tests/test_gcs_conformance.py drives, in its own environment: its map and GUI
# dependencies (opencv-python, vtk) would replace this project's opencv-python-headless. Only what its
# console needs is installed.
if [ ! -x .venv-gcs/bin/mavproxy.py ]; then
  python3 -m venv .venv-gcs
  .venv-gcs/bin/python -m pip install -q --upgrade pip
  .venv-gcs/bin/python -m pip install -q --no-deps "MAVProxy==1.8.75" pymavlink fastcrc lxml pyserial numpy \
    defusedxml pynmeagps
fi
.venv/bin/python -c "import drone_sim; print('drone_sim', drone_sim.__version__, 'ready, observation layout v%d' % drone_sim.OBS_VERSION)"
