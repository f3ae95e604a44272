"""Root pytest configuration (unit tests and nbval alike).

Notebooks re-executed by nbval, and the smoke runs, write figures and results. Those go to
a scratch folder (seeded with a copy of the committed ``results/``, so a notebook that reads
earlier results still finds them), never over the committed files.
"""
import os
import shutil
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent

if "CLICKVISION_RESULTS_DIR" not in os.environ:
    scratch = Path(tempfile.mkdtemp(prefix="clickvision-test-"))
    shutil.copytree(ROOT / "results", scratch / "results",
                    ignore=shutil.ignore_patterns("runs"), dirs_exist_ok=True)
    os.environ["CLICKVISION_RESULTS_DIR"] = str(scratch / "results")
    os.environ["CLICKVISION_FIGURES_DIR"] = str(scratch / "figures")
# Trained numbers are compared with the committed results/ within a tolerance
# (clickvision.regression), the exact outputs by nbval itself.
os.environ.setdefault("CLICKVISION_REFERENCE_DIR", str(ROOT / "results"))
os.environ.setdefault("CLICKVISION_HEADLESS", "1")
os.environ.setdefault("PYTHONHASHSEED", "0")
