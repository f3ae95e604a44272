"""Run the whole workbook: every notebook in order, headless, with papermill.

    python -m clickvision.workbook run [--profile default] [--only SUBSTRING] [--jobs N]
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
import threading
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


def _run_in_place(nb: Path, profile: str, timeout_s: int, env: dict[str, str] | None = None,
                  cancel: threading.Event | None = None) -> RunInfo:
    """Execute one notebook into a temporary copy; move it over the committed one only on success."""
    fd, tmp = tempfile.mkstemp(suffix=".ipynb", dir=nb.parent, prefix=f".{nb.stem}.")
    os.close(fd)
    os.chmod(tmp, os.stat(nb).st_mode & 0o777)  # keep the notebook's mode (mkstemp makes 0600)
    info = run_notebook(nb, tmp, _params_for(nb, profile), env=env, timeout_s=timeout_s, cancel=cancel)
    rel = nb.relative_to(paths.PROJ_ROOT)
    if not info.ok:
        os.unlink(tmp)
        if info.returncode != -1:  # -1: not started, another lane failed first
            print(f"FAILED {rel} after {info.wall_s:.0f} s (committed copy kept)\n{info.log_tail}", flush=True)
        return info
    _relative_papermill_paths(Path(tmp), nb)
    os.replace(tmp, nb)
    info.output = str(nb)
    record_timing(info, profile)
    print(f"ok {rel}: {info.wall_s:.0f} s ({info.cpu_s:.0f} CPU-s), peak {info.peak_mb:.0f} MB", flush=True)
    return info


def _recorded_cpu_s(profile: str) -> dict[str, float]:
    path = paths.RESULTS_DIR / TIMINGS
    if not path.exists():
        return {}
    t = pd.read_csv(path)
    t = t[t["profile"] == profile]
    return {str(n): float(c) for n, c in zip(t["notebook"], t.get("cpu_s", t["wall_s"]))}


def plan_lanes(nbs: list[Path], jobs: int, cost: dict[str, float] | None = None) -> list[list[Path]]:
    """Split notebooks into at most ``jobs`` lanes that can run side by side.

    A folder is one unit: its notebooks may read each other's results (paper A's later
    sections read the settings its earlier ones selected), so they stay together and in
    order. Folders go, longest first (by ``cost``: recorded CPU seconds; 60 s when unknown),
    to the least loaded lane. Returns the non-empty lanes, each in workbook order.
    """
    cost = cost or {}
    folders: dict[str, list[Path]] = {}
    for nb in nbs:
        folders.setdefault(nb.parent.name, []).append(nb)

    def weight(group: list[Path]) -> float:
        return sum(cost.get(str(nb.relative_to(paths.NOTEBOOKS_DIR)), 60.0) for nb in group)

    lanes: list[list[Path]] = [[] for _ in range(max(1, jobs))]
    loads = [0.0] * len(lanes)
    for group in sorted(folders.values(), key=lambda g: (-weight(g), g[0])):
        i = loads.index(min(loads))
        lanes[i] += group
        loads[i] += weight(group)
    return [sorted(lane, key=nbs.index) for lane in lanes if lane]


def run_all(profile: str = "default", only: str | None = None, timeout_s: int = 3600,
            jobs: int | None = None) -> list[RunInfo]:
    """Execute every notebook in place at ``profile``; stop at the first failure.

    ``jobs`` lanes (default: ``CLICKVISION_WORKBOOK_JOBS``, else the usable CPUs) run side by
    side (:func:`plan_lanes`: paper folders as units), each notebook with ``cpus // jobs``
    threads, so the lanes share the cores without oversubscribing them; the summaries
    (``run_last``) run after all lanes, alone. A failure stops every lane after its current
    notebook. ``jobs=1`` is the plain sequential run.
    """
    from .threads import share, thread_env, usable_cpus

    nbs = notebooks(only)
    body, last = [nb for nb in nbs if not _runs_last(nb)], [nb for nb in nbs if _runs_last(nb)]
    if jobs is None:
        env_jobs = os.environ.get("CLICKVISION_WORKBOOK_JOBS", "").strip()
        jobs = int(env_jobs) if env_jobs else usable_cpus()
    if not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be a positive integer, got {jobs!r}")
    lanes = plan_lanes(body, jobs, _recorded_cpu_s(profile))
    infos: list[RunInfo] = []
    if len(lanes) <= 1:
        for nb in body:
            infos.append(_run_in_place(nb, profile, timeout_s))
            if not infos[-1].ok:
                return infos
    else:
        from concurrent.futures import ThreadPoolExecutor

        cancel = threading.Event()
        env = thread_env(share(len(lanes)))
        print(f"{len(lanes)} lanes side by side, {env['OMP_NUM_THREADS']} thread(s) each: "
              + "; ".join(", ".join(nb.stem.split("-")[0] for nb in lane) for lane in lanes), flush=True)

        def lane_run(lane: list[Path]) -> list[RunInfo]:
            done = []
            for nb in lane:
                done.append(_run_in_place(nb, profile, timeout_s, env, cancel))
                if not done[-1].ok:
                    cancel.set()
                    break
            return done

        with ThreadPoolExecutor(max_workers=len(lanes)) as pool:
            for result in pool.map(lane_run, lanes):
                infos += result
        if cancel.is_set():
            return [i for i in infos if i.returncode != -1]
    for nb in last:
        infos.append(_run_in_place(nb, profile, timeout_s))
        if not infos[-1].ok:
            break
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
    r.add_argument("--jobs", type=int, default=None,
                   help="lanes run side by side (paper folders as units; default: CLICKVISION_WORKBOOK_JOBS "
                        "or the CPUs; 1: one notebook at a time)")
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
        infos = run_all(args.profile, args.only, jobs=args.jobs)
    else:
        out = args.out or Path(tempfile.mkdtemp(prefix="clickvision-smoke-"))
        infos = smoke(out, args.only)
    bad = [i for i in infos if not i.ok]
    for i in bad:
        print(f"FAILED: {i.notebook}\n{i.log_tail}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
