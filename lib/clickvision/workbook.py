"""Run the whole workbook: every notebook in order, headless, with papermill.

    python -m clickvision.workbook run [--profile default] [--only SUBSTRING]
    python -m clickvision.workbook smoke [--out DIR]
    python -m clickvision.workbook list

``run`` executes each notebook in place (written to a temporary copy first and moved over
the committed one only when it succeeds, so a failure loses nothing), regenerating
``figures/`` and ``results/``, and records each notebook's wall time and peak memory in
``results/timings.csv``. ``smoke`` runs every notebook at profile ``smoke`` into a
scratch folder, with figures and results redirected there too (used by the tests).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from . import paths
from .io import atomic_path, file_lock
from .nbrun import RunInfo, notebook_parameters, run_notebook

TIMINGS = "timings.csv"


def _runs_last(nb: Path) -> bool:
    """Summary notebooks (metadata ``clickvision.run_last``) run after every other one."""
    import json

    try:
        return bool(json.loads(nb.read_text())["metadata"].get("clickvision", {}).get("run_last"))
    except (ValueError, KeyError):
        return False


def notebooks(only: str | None = None) -> list[Path]:
    """Every notebook under ``notebooks/``, in workbook order (folder, then PP.SS name;
    summaries that read the others' results last)."""
    found = sorted((p for p in paths.NOTEBOOKS_DIR.rglob("*.ipynb")
                    if ".ipynb_checkpoints" not in p.parts and not p.name.startswith(".")),
                   key=lambda p: (_runs_last(p), p))
    return [p for p in found if not only or only in str(p.relative_to(paths.NOTEBOOKS_DIR))]


def _params_for(nb: Path, profile: str) -> dict:
    declared = notebook_parameters(nb)
    if "profile" not in declared:
        raise SystemExit(f"error: {nb} has no 'profile' parameter in its parameters cell")
    return {} if declared["profile"] == profile else {"profile": profile}


def record_timing(info: RunInfo, profile: str) -> None:
    path = paths.RESULTS_DIR / TIMINGS
    rel = str(Path(info.notebook).resolve().relative_to(paths.NOTEBOOKS_DIR))
    row = pd.DataFrame([{"notebook": rel, "profile": profile, "wall_s": round(info.wall_s, 1),
                         "cpu_s": round(info.cpu_s, 1), "peak_mb": round(info.peak_mb),
                         "date": time.strftime("%Y-%m-%d"), "cpus": os.cpu_count()}])
    with file_lock(path):
        old = pd.read_csv(path) if path.exists() else pd.DataFrame()
        if len(old):
            old = old[~((old["notebook"] == rel) & (old["profile"] == profile))]
        table = pd.concat([old, row], ignore_index=True).sort_values(["profile", "notebook"])
        with atomic_path(path) as tmp:
            table.to_csv(tmp, index=False)


def _relative_papermill_paths(executed: Path, nb: Path) -> None:
    """papermill records absolute input/output paths (and our temporary name): keep the
    committed notebook free of machine paths."""
    import json

    data = json.loads(executed.read_text())
    meta = data.get("metadata", {}).get("papermill", {})
    rel = str(nb.relative_to(paths.PROJ_ROOT))
    meta.update({k: rel for k in ("input_path", "output_path") if k in meta})
    executed.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")


def run_all(profile: str = "default", only: str | None = None, timeout_s: int = 3600) -> list[RunInfo]:
    """Execute every notebook in place at ``profile``; stop at the first failure."""
    infos = []
    for nb in notebooks(only):
        fd, tmp = tempfile.mkstemp(suffix=".ipynb", dir=nb.parent, prefix=f".{nb.stem}.")
        os.close(fd)
        os.chmod(tmp, os.stat(nb).st_mode & 0o777)  # keep the notebook's mode (mkstemp makes 0600)
        info = run_notebook(nb, tmp, _params_for(nb, profile), timeout_s=timeout_s)
        rel = nb.relative_to(paths.PROJ_ROOT)
        if not info.ok:
            os.unlink(tmp)
            print(f"FAILED {rel} after {info.wall_s:.0f} s (committed copy kept)\n{info.log_tail}")
            infos.append(info)
            return infos
        _relative_papermill_paths(Path(tmp), nb)
        os.replace(tmp, nb)
        info.output = str(nb)
        record_timing(info, profile)
        print(f"ok {rel}: {info.wall_s:.0f} s ({info.cpu_s:.0f} CPU-s), peak {info.peak_mb:.0f} MB",
              flush=True)
        infos.append(info)
    return infos


def smoke(out_dir: Path, only: str | None = None, timeout_s: int = 900) -> list[RunInfo]:
    """Every notebook at profile ``smoke`` into ``out_dir``; outputs redirected there."""
    env = {"CLICKVISION_RESULTS_DIR": str(out_dir / "results"),
           "CLICKVISION_FIGURES_DIR": str(out_dir / "figures")}
    infos = []
    for nb in notebooks(only):
        out = out_dir / nb.relative_to(paths.NOTEBOOKS_DIR)
        info = run_notebook(nb, out, {"profile": "smoke"}, env=env, timeout_s=timeout_s)
        print(f"{'ok' if info.ok else 'FAILED'} {nb.name}: {info.wall_s:.0f} s", flush=True)
        infos.append(info)
    return infos


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m clickvision.workbook", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="execute every notebook in place")
    r.add_argument("--profile", default="default", choices=("smoke", "default", "paper"))
    r.add_argument("--only", help="run notebooks whose path contains this")
    s = sub.add_parser("smoke", help="every notebook at profile smoke into a scratch folder")
    s.add_argument("--out", type=Path, default=None)
    s.add_argument("--only")
    sub.add_parser("list", help="list notebooks in order")
    args = ap.parse_args(argv)
    if args.cmd == "list":
        for nb in notebooks():
            print(nb.relative_to(paths.PROJ_ROOT))
        return 0
    if args.cmd == "run":
        infos = run_all(args.profile, args.only)
    else:
        out = args.out or Path(tempfile.mkdtemp(prefix="clickvision-smoke-"))
        infos = smoke(out, args.only)
    bad = [i for i in infos if not i.ok]
    for i in bad:
        print(f"FAILED: {i.notebook}\n{i.log_tail}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
