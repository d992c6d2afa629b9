"""python -m deploy.ui: drone-ui."""
import sys

from .cli import main

sys.exit(main())
