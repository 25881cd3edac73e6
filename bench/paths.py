"""Where the bench's pieces are, and the import path to the package and the
tests' harness (tests/killer.py), which the bench shares rather than copies."""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
BUILD = ROOT / "build" / "bench"     # the workloads, from `make bench-build`
PYTHON = "/usr/bin/python3"

for _p in (ROOT / "src", ROOT / "tests"):
    if str(_p) not in sys.path:
        sys.path.insert(1, str(_p))
