"""python -m policies.sweep: drone-sweep."""
from .cli import entry

entry()
