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

# Under pytest-xdist (`make test` runs `-n auto --dist loadfile`: a file's tests, so a
# notebook's cells, stay on one worker, in order) the CPUs are split between the workers:
# each worker's processes (nbval kernels, papermill runs, paper C's run pools) use
# cpus // workers threads, so two workers never oversubscribe two cores (oversubscribed
# OpenMP threads spin and slow a small model's step many times over). The numbers this
# gives are within the regression tolerances (tests/test_other_kernels.py checks one thread).
if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):
    from clickvision.threads import share, thread_env  # torch-free: nothing numerical has loaded yet

    for _var, _value in thread_env(share(int(os.environ["PYTEST_XDIST_WORKER_COUNT"]))).items():
        os.environ.setdefault(_var, _value)

# Files scheduled first, in this order: the claims ledger reads results/claims.csv, which the
# other notebooks' runs rewrite (so it must show the committed one); then the longest files,
# so that they do not finish last on one worker while the other idles.
FIRST = ("00.03-Claims-Ledger.ipynb", "test_other_kernels.py", "test_notebooks.py")


def pytest_collection_modifyitems(config, items):
    """Run :data:`FIRST`'s files first (a stable sort: every other order kept)."""
    items.sort(key=lambda item: FIRST.index(item.path.name) if item.path.name in FIRST else len(FIRST))
