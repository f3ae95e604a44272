"""Root pytest configuration (unit tests and nbval alike).

Notebooks re-executed by nbval, and the smoke runs, write figures and results. Those go to
a scratch folder (seeded with a copy of the committed ``results/``, so a notebook that reads
earlier results still finds them), never over the committed files. The scratch results are
restored to the committed copy before each notebook nbval runs: a notebook re-executed earlier
on the same worker must not change what a later one reads (A.04's validation selections, re-made
on another CPU, once changed the settings A.14 printed), so every notebook is checked against the
committed inputs its committed outputs were made from.
"""
import os
import shutil
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent

SCRATCH_RESULTS: Path | None = None  # the scratch results folder this session made (None: the user chose one)


def restore_scratch_results(scratch: Path, committed: Path = ROOT / "results") -> None:
    """Make ``scratch`` a fresh copy of the ``committed`` results (``runs/`` left out), in place:
    the folder keeps its path, so a kernel already pointed at it reads the restored files."""
    if scratch.exists():
        for entry in scratch.iterdir():
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    shutil.copytree(committed, scratch, ignore=shutil.ignore_patterns("runs"), dirs_exist_ok=True)


# Every test process makes its own scratch folder: pytest-xdist's workers inherit the controller's
# environment, so a folder recorded there would otherwise be shared by all workers (and one worker's
# restore would pull files from under another's notebook). OWN_SCRATCH marks a folder made here; a
# CLICKVISION_RESULTS_DIR the user set is used as it is, never restored.
OWN_SCRATCH = "CLICKVISION_TEST_SCRATCH"
if os.environ.get("CLICKVISION_RESULTS_DIR") in (None, os.environ.get(OWN_SCRATCH)):
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    scratch = Path(tempfile.mkdtemp(prefix=f"clickvision-test-{worker}-"))
    SCRATCH_RESULTS = scratch / "results"
    restore_scratch_results(SCRATCH_RESULTS)
    os.environ["CLICKVISION_RESULTS_DIR"] = os.environ[OWN_SCRATCH] = str(SCRATCH_RESULTS)
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

# Files scheduled first, in this order: the claims ledger (cheap; it reads results/claims.csv, which
# the other notebooks' runs rewrite and the restore above puts back); then the longest files,
# so that they do not finish last on one worker while the other idles.
FIRST = ("00.03-Claims-Ledger.ipynb", "test_other_kernels.py", "test_notebooks.py")


_last_notebook: list = [None]


def pytest_unconfigure(config):
    """Remove the scratch folder this process made (each xdist worker and the controller make one)."""
    if SCRATCH_RESULTS is not None:
        shutil.rmtree(SCRATCH_RESULTS.parent, ignore_errors=True)


def pytest_runtest_setup(item):
    """Before the first cell nbval runs of each notebook, restore the scratch results (see above)."""
    if SCRATCH_RESULTS is not None and item.path.suffix == ".ipynb" and item.path != _last_notebook[0]:
        _last_notebook[0] = item.path
        restore_scratch_results(SCRATCH_RESULTS)


def pytest_collection_modifyitems(config, items):
    """Run :data:`FIRST`'s files first (a stable sort: every other order kept)."""
    items.sort(key=lambda item: FIRST.index(item.path.name) if item.path.name in FIRST else len(FIRST))
