"""`python -m policies ...` is drone-train; `torchrun --nproc_per_node=K -m policies ...` trains on K ranks."""
import sys

from .cli import train_main

sys.exit(train_main())
