"""The benchmark's command: ``python bench/run.py [options]`` (bench/README.md says which answers what).

The harness itself is the package bench/ (bench.cli and the modules below it). Run as a script,
this file has bench/ itself first on sys.path, where the package's modules (``inputs``,
``report``, ...) would shadow any top-level module of the same name; so that entry is replaced
by the repository root, from which ``bench`` imports as a package.
"""

from __future__ import annotations

import sys
from pathlib import Path

_BENCH = Path(__file__).resolve().parent
if sys.path and Path(sys.path[0] or ".").resolve() == _BENCH:
    sys.path[0] = str(_BENCH.parent)
elif str(_BENCH.parent) not in sys.path:
    sys.path.insert(0, str(_BENCH.parent))

from bench.cli import main  # noqa: E402  (sys.path first)

if __name__ == "__main__":
    sys.exit(main())
