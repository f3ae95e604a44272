"""Project paths, resolved from this file and never from the working directory.

The repository layout is fixed (see docs/DESIGN.md): the package lives in ``lib/clickvision``,
so the project root is two folders above this file. ``CLICKVISION_ROOT`` overrides it
(useful when the package is installed non-editable elsewhere).
"""
from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def _find_root() -> Path:
    env = os.environ.get("CLICKVISION_ROOT")
    if env:
        return Path(env).resolve()
    return PACKAGE_DIR.parents[1]


PROJ_ROOT: Path = _find_root()
DATA_DIR: Path = PROJ_ROOT / "data"
RAW_DIR: Path = DATA_DIR / "raw"            # downloaded / unpacked sources (git-ignored)
PROCESSED_DIR: Path = DATA_DIR / "processed"  # built tables and images (git-ignored)
CACHE_DIR: Path = DATA_DIR / "cache"        # backbone feature cache (git-ignored)
# Outputs can be redirected (the test command sends smoke and nbval runs to a scratch
# folder so they never touch the committed figures/ and results/).
FIGURES_DIR: Path = Path(os.environ.get("CLICKVISION_FIGURES_DIR") or PROJ_ROOT / "figures")
RESULTS_DIR: Path = Path(os.environ.get("CLICKVISION_RESULTS_DIR") or PROJ_ROOT / "results")
# Executed sweep copies and their per-point row logs live under the (possibly redirected)
# results folder, so a redirected sweep never mistakes another folder's runs for its own.
RUNS_DIR: Path = RESULTS_DIR / "runs"  # git-ignored
NOTEBOOKS_DIR: Path = PROJ_ROOT / "notebooks"
CHECKPOINTS_DIR: Path = DATA_DIR / "cache" / "checkpoints"


def ensure_dir(path: Path) -> Path:
    """Create ``path`` (and parents) if needed and return it."""
    path.mkdir(parents=True, exist_ok=True)
    return path
