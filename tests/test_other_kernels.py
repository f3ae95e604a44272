"""The committed outputs pass nbval on other CPU kernels, not only on the machine that made them.

Another machine of the same kind picks other float kernels (AVX2 instead of AVX-512, another
BLAS/oneDNN split per thread count), and training turns last-bit differences into changes of
about a seed's spread. Here a few representative notebooks (one per paper, each training
models) are re-executed by ``pytest --nbval`` with PyTorch forced to another kernel set
(``ATEN_CPU_CAPABILITY``: ``avx2`` where this CPU has AVX-512, else ``default``) and one
BLAS/OpenMP thread instead of the machine's count. Their exact outputs must still match
digit by digit and their trained numbers within the tolerances of
:mod:`clickvision.regression`. ``tools/kernel_diff.py`` runs the same for every notebook.

Only the notebooks whose committed outputs were made with this CPU's kernel set are re-run: the
kernel set of a committed run is in the ``device`` column of its results rows
(:func:`clickvision.provenance.device`). A notebook made on another kernel set (outputs made on an
AVX-512 CPU, checked on an AVX2 one) is already re-executed on other kernels, at
``cpus // workers`` threads, by the ordinary nbval run of ``make test``; running it here again
would repeat that check (and on an AVX2 CPU force PyTorch's unvectorised ``default`` kernels,
the slowest of the suite).
"""
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from clickvision import provenance

ROOT = Path(__file__).resolve().parents[1]
REPRESENTATIVE = [
    "notebooks/A-mtmdd-vm/A.03-Embedding-Ablations.ipynb",
    "notebooks/B-click-cf-retrieval/B.02-CNN-CF-Retrieval.ipynb",
    "notebooks/C-chtn-cross-modal/C.02-CHTN.ipynb",
    "notebooks/D-collaborative-image-understanding/D.02-CF2Label.ipynb",
]


def committed_kernels(notebook: str, results: Path = ROOT / "results") -> set[str]:
    """The kernel sets of the committed default-profile run(s) of ``notebook`` (its results files
    ``results/<number>-*.csv``, the latest run of each)."""
    number = Path(notebook).name.split("-", 1)[0]
    found = set()
    for path in sorted(results.glob(f"{number}-*.csv")):
        rows = pd.read_csv(path, usecols=lambda c: c in ("run_id", "profile", "time", "device"))
        if not {"run_id", "profile", "time", "device"} <= set(rows.columns):
            continue
        rows = rows[rows["profile"] == "default"]
        if len(rows):
            latest = rows.loc[rows["time"] == rows["time"].max(), "device"]
            found |= {k for k in map(provenance.kernels_of, latest) if k}
    return found


def this_kernels() -> str:
    import torch

    return torch.backends.cpu.get_cpu_capability()


def test_kernels_of_reads_the_device_column():
    assert provenance.kernels_of("cpu: Intel(R) Xeon(R) Processor (AVX512, 2 cores)") == "AVX512"
    assert provenance.kernels_of("cpu: AMD EPYC (AVX2, 16 cores)") == "AVX2"
    assert provenance.kernels_of("cuda: NVIDIA H200") is None
    for nb in REPRESENTATIVE:  # every representative notebook has committed rows that name their kernels
        assert committed_kernels(nb), f"{nb}: no committed default run with a readable device column"


def other_capability() -> str:
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    return "avx2" if "avx512f" in flags else "default"


@pytest.mark.skipif(not (ROOT / "data" / "cache").exists(), reason="feature cache not built (make features)")
def test_nbval_passes_on_other_kernels(tmp_path):
    here = this_kernels()
    made_here = [nb for nb in REPRESENTATIVE if here in committed_kernels(nb)]
    if not made_here:
        pytest.skip(f"the committed outputs of {len(REPRESENTATIVE)} representative notebooks were made with "
                    f"{sorted(set().union(*map(committed_kernels, REPRESENTATIVE)))} kernels and this CPU runs "
                    f"{here}: the ordinary nbval run already checks them on other kernels")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CLICKVISION_RESULTS_DIR", "CLICKVISION_FIGURES_DIR", "PYTEST_"))}
    env.update({"ATEN_CPU_CAPABILITY": other_capability(), "OMP_NUM_THREADS": "1",
                "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
                "CLICKVISION_RESULTS_DIR": str(tmp_path / "results"),
                "CLICKVISION_FIGURES_DIR": str(tmp_path / "figures"),
                "CLICKVISION_REFERENCE_DIR": str(ROOT / "results")})
    # the notebooks read earlier notebooks' committed results: seed the scratch folder
    import shutil

    shutil.copytree(ROOT / "results", tmp_path / "results", ignore=shutil.ignore_patterns("runs"))
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval", "--nbval-current-env",
           "--nbval-sanitize-with", "tests/nbval-sanitize.cfg", *made_here]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=3000)
    tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-60:])
    assert proc.returncode == 0, f"nbval under ATEN_CPU_CAPABILITY={env['ATEN_CPU_CAPABILITY']}, 1 thread:\n{tail}"
