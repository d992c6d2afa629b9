"""python -m firmware_bridge.sim: drone-sim-vehicle."""
import sys

from .cli import main

sys.exit(main())
