"""The committed outputs pass nbval on other CPU kernels, not only on the machine that made them.

Another machine of the same kind picks other float kernels (AVX2 instead of AVX-512, another
BLAS/oneDNN split per thread count), and training turns last-bit differences into changes of
about a seed's spread. Here a few representative notebooks (one per paper, each training
models) are re-executed by ``pytest --nbval`` with PyTorch forced to another kernel set
(``ATEN_CPU_CAPABILITY``: ``avx2`` where this CPU has AVX-512, else ``default``) and one
BLAS/OpenMP thread instead of the machine's count. Their exact outputs must still match
digit by digit and their trained numbers within the tolerances of
:mod:`clickvision.regression`. ``tools/kernel_diff.py`` runs the same for every notebook.
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REPRESENTATIVE = [
    "notebooks/A-mtmdd-vm/A.03-Embedding-Ablations.ipynb",
    "notebooks/B-click-cf-retrieval/B.02-CNN-CF-Retrieval.ipynb",
    "notebooks/C-chtn-cross-modal/C.02-CHTN.ipynb",
    "notebooks/D-collaborative-image-understanding/D.02-CF2Label.ipynb",
]


def other_capability() -> str:
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    return "avx2" if "avx512f" in flags else "default"


@pytest.mark.skipif(not (ROOT / "data" / "cache").exists(), reason="feature cache not built (make features)")
def test_nbval_passes_on_other_kernels(tmp_path):
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
           "--nbval-sanitize-with", "tests/nbval-sanitize.cfg", *REPRESENTATIVE]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=3000)
    tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-60:])
    assert proc.returncode == 0, f"nbval under ATEN_CPU_CAPABILITY={env['ATEN_CPU_CAPABILITY']}, 1 thread:\n{tail}"
