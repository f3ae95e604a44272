"""Which cells' outputs change when the notebooks run on other CPU kernels?

    python tools/kernel_diff.py OUT_DIR [--only SUBSTRING] [--run] [--env NAME=VALUE ...]

With ``--run``, executes every committed notebook (default parameters) with papermill into
``OUT_DIR`` under the given environment (e.g. ``ATEN_CPU_CAPABILITY=avx2`` to get the AVX2
kernels an AVX-512 machine would not use, ``OMP_NUM_THREADS=1`` for another BLAS split);
results and figures go to a scratch folder. Then (with or without ``--run``) compares each
executed copy's text outputs, after the nbval sanitizers, with the committed notebook and
prints, per notebook, the cells that differ and whether they carry ``nbval-ignore-output``.
An untagged differing cell is a regression check that would fail on another machine.
Exit code 1 when there is one.
"""
from __future__ import annotations

import argparse
import configparser
import json
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))

from clickvision import workbook  # noqa: E402
from clickvision.nbrun import run_notebook  # noqa: E402
from clickvision.regression import IGNORE_TAG  # noqa: E402


def sanitizers() -> list[tuple[re.Pattern, str]]:
    cfg = configparser.RawConfigParser()
    cfg.read(ROOT / "tests" / "nbval-sanitize.cfg")
    return [(re.compile(cfg[s]["regex"]), cfg[s]["replace"]) for s in cfg.sections()]


SKIP = ("image/png", "image/jpeg", "application/vnd.jupyter.widget-view+json")  # as nbval


def texts(cell: dict, subs) -> list[str]:
    """What nbval compares of a cell: stream texts (stdout and stderr alike) and every
    output's data but images and widget ids, sanitized."""
    out = []
    for o in cell.get("outputs", []):
        if o.get("output_type") == "stream":
            items = ["".join(o.get("text", ""))]
        elif o.get("output_type") in ("execute_result", "display_data"):
            d = o.get("data", {})
            items = [f"{k}: " + "".join(v) if isinstance(v, (list, str)) else f"{k}: {v}"
                     for k, v in sorted(d.items()) if k not in SKIP]
        elif o.get("output_type") == "error":
            items = ["ERROR " + o.get("ename", "")]
        else:
            continue
        for t in items:
            for rx, rep in subs:
                t = rx.sub(rep, t)
            out.append(t)
    return out


def diff_notebook(committed: Path, executed: Path, subs) -> list[tuple[int, str, bool]]:
    a = json.loads(committed.read_text())["cells"]
    b = [c for c in json.loads(executed.read_text())["cells"]
         if "injected-parameters" not in c.get("metadata", {}).get("tags", [])]
    found = []
    for i, (ca, cb) in enumerate(zip(a, b)):
        if ca["cell_type"] != "code":
            continue
        if texts(ca, subs) != texts(cb, subs):
            found.append((i, ca.get("id", ""), IGNORE_TAG in ca.get("metadata", {}).get("tags", [])))
    return found


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--only", default=None)
    ap.add_argument("--run", action="store_true")
    ap.add_argument("--env", nargs="*", default=[])
    a = ap.parse_args(argv)
    env = dict(kv.split("=", 1) for kv in a.env)
    scratch = Path(tempfile.mkdtemp(prefix="kernel-diff-"))
    env.setdefault("CLICKVISION_RESULTS_DIR", str(scratch / "results"))
    env.setdefault("CLICKVISION_FIGURES_DIR", str(scratch / "figures"))
    subs = sanitizers()
    untagged = 0
    for nb in workbook.notebooks(a.only):
        out = a.out / nb.relative_to(ROOT / "notebooks")
        if a.run:
            out.parent.mkdir(parents=True, exist_ok=True)
            info = run_notebook(nb, out, {}, env=env, timeout_s=1800)
            if not info.ok:
                print(f"{nb.name}: FAILED\n{info.log_tail}")
                untagged += 1
                continue
        if not out.exists():
            continue
        cells = diff_notebook(nb, out, subs)
        bad = [c for c in cells if not c[2]]
        untagged += len(bad)
        print(f"{nb.name}: {len(cells)} cells differ, {len(bad)} untagged"
              + "".join(f"\n  cell {i} id={cid} {'tagged' if t else 'UNTAGGED'}" for i, cid, t in cells),
              flush=True)
    return 1 if untagged else 0


if __name__ == "__main__":
    sys.exit(main())
