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
        if info.returncode != -1:  # -1: not started, another notebook failed first
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


#: Notebooks that read another notebook's results of the same run, besides their folder's order
#: (section numbers, the first field of a notebook's name): they start once those have finished.
READS: dict[str, tuple[str, ...]] = {
    # A.10-A.13 run with the settings A.04 (tau, B, T), A.07 (lambda) and A.08 (mu) selected on
    # validation (paper_a.methods.selected_settings); A.14 too, and its target comes from 00.02's
    # measured vendor gaps (paper_a.data.choose_domains)
    **{section: ("A.04", "A.07", "A.08") for section in ("A.10", "A.11", "A.12", "A.13")},
    "A.14": ("00.02", "A.04", "A.07", "A.08"),
}
#: Folders whose notebooks read nothing of each other beyond :data:`READS`, so they need not run in
#: order; every other folder is a chain (each notebook after the one before it).
UNORDERED_FOLDERS = frozenset({"A-mtmdd-vm"})
#: Notebooks that read no image features: they run while ``clickvision.features build`` fills the
#: cache (``run --features``), in a process where reading features raises
#: (``features.NO_FEATURES_ENV``; their smoke runs check it, tests/test_notebooks.py).
FEATURE_FREE = frozenset({"00.01", "D.01", "D.02", "D.06"})
#: With ``run --features`` the feature cache is built as one task of the schedule per part of the cache
#: (``clickvision.features build --only NAME``, features.CACHE_SETS), one after another in this order,
#: the part that unblocks the most work soonest first: Open Clip Art (the cheapest; paper D's
#: D.03-D.05 read nothing else), the base emoji set (all of paper A), the Iconify vendors (00.02, A.14).
FEATURE_ORDER = ("openclipart", "emoji", "vendors")
FEATURE_PREFIX = "features:"


def feature_task(name: str) -> str:
    """The schedule's task that builds part ``name`` of the feature cache: ``"features:emoji"``."""
    return FEATURE_PREFIX + name


FEATURE_TASKS = tuple(feature_task(name) for name in FEATURE_ORDER)
#: Seconds each feature task takes on a fresh clone, used when results/timings.csv records none for it:
#: measured 2026-12-03 on 2 cores, one thread (the extraction's own, features.EXTRACTION_THREADS), the
#: machine otherwise idle (Open Clip Art 116 s, emoji 72 s, the seven Iconify vendors 102 s in all).
#: Beside a one-thread notebook they take about as long: the extraction is bound by PNG decoding.
FEATURE_COST = {"features:openclipart": 116.0, "features:emoji": 72.0, "features:vendors": 102.0}
#: The parts of the feature cache (:data:`FEATURE_ORDER`) each notebook reads; with ``run --features``
#: it starts once those are built, in a process that may read no other part
#: (``features.FEATURE_SETS_ENV``). A notebook neither listed here nor in :data:`FEATURE_FREE` waits
#: for every part. Each entry follows what the notebook loads at profile default:
FEATURE_READS: dict[str, tuple[str, ...]] = {
    # 00.02: the vendor-gap table reads the base emoji entry for google/twitter/openmoji and one
    # emoji[<vendor>] entry per Iconify vendor (data_tour.vendor_features)
    "00.02": ("emoji", "vendors"),
    # paper A: the base emoji set's pooled vectors and conv maps (paper_a.data.load_paper_a_data);
    # A.07, A.08 and A.10-A.14 also the features of the target vendor 00.02's gaps choose, an Iconify one
    # today (paper_a.core.resolve_target, data.emoji_set_of; A.14 its cut1 input, paper_a.trunk.load_trunk_data)
    **{f"A.{i:02d}": ("emoji",) for i in range(1, 10)},
    **{f"A.{i:02d}": ("emoji", "vendors") for i in (7, 8, 10, 11, 12, 13)},
    "A.14": ("emoji", "vendors"),
    "A.15": ("emoji",),  # A.04 / A.08's data (core.load_data), at the paper's settings: no other notebook read
    # paper B: the simulated logs of emoji-google and openclipart, each joined to its full set's pooled
    # features (paper_b.core.load_click_data; B.01 and B.02 run both sets at default)
    "B.01": ("openclipart", "emoji"), "B.02": ("openclipart", "emoji"),
    # paper C: target openclipart with source emoji, target openmoji (emoji) with source openclipart
    # (paper_c.data.prepare_data, DEFAULT_SOURCE, image_features)
    **{f"C.{i:02d}": ("openclipart", "emoji") for i in range(1, 5)},
    # paper D: Open Clip Art's pooled features (paper_d.data.openclipart_items via core.image_run and
    # D.07's sweep.information_sweep) and, for D.05's trunk, its cut1 activations (paper_d.trunk.arm_items)
    **{s: ("openclipart",) for s in ("D.03", "D.04", "D.05", "D.07")},
}


def section(nb: Path) -> str:
    """A notebook's section number: ``A.14`` for ``A.14-Shared-Trunk.ipynb``."""
    return nb.stem.split("-")[0]


def feature_reads(nb: Path | str) -> tuple[str, ...]:
    """The parts of the feature cache a notebook (or section) reads, in :data:`FEATURE_ORDER`:
    none for :data:`FEATURE_FREE`, its :data:`FEATURE_READS` entry, else every part."""
    s = section(nb) if isinstance(nb, Path) else nb
    if s in FEATURE_FREE:
        return ()
    wanted = FEATURE_READS.get(s, FEATURE_ORDER)
    return tuple(name for name in FEATURE_ORDER if name in wanted)


def dependencies(nbs: list[Path], features: bool = False) -> dict:
    """What each notebook (and, with ``features``, each task of :data:`FEATURE_TASKS`) waits for: the
    notebook before it in its folder (unless the folder is in :data:`UNORDERED_FOLDERS`), the
    notebooks :data:`READS` names, and, with ``features``, the parts of the feature cache it reads
    (:func:`feature_reads`); each feature task waits for the one before it (:data:`FEATURE_ORDER`).
    Only notebooks in ``nbs`` count (a subset run waits for nothing else)."""
    by_section = {section(nb): nb for nb in nbs}
    deps: dict = {}
    if features:
        deps.update({t: set(FEATURE_TASKS[i - 1:i]) for i, t in enumerate(FEATURE_TASKS)})
    for nb in nbs:
        wait = {by_section[s] for s in READS.get(section(nb), ()) if s in by_section}
        if nb.parent.name not in UNORDERED_FOLDERS:
            folder = [x for x in nbs if x.parent == nb.parent]
            if folder.index(nb):
                wait.add(folder[folder.index(nb) - 1])
        if features:
            wait.update(feature_task(name) for name in feature_reads(nb))
        deps[nb] = wait
    return deps


def task_cost(task, cost: dict[str, float]) -> float:
    """A task's expected seconds: its recorded CPU seconds in ``cost`` (keyed by notebook path below
    ``notebooks/``, or by the task's name for a feature task), else :data:`FEATURE_COST` for a
    feature task (200 s for another named task), 60 s for a notebook."""
    if isinstance(task, str):
        return cost.get(task, FEATURE_COST.get(task, 200.0))
    return cost.get(str(task.relative_to(paths.NOTEBOOKS_DIR)), 60.0)


def priorities(deps: dict, cost: dict[str, float]) -> dict:
    """Each task's longest path to the end of the run, its own cost included (:func:`task_cost`:
    recorded CPU seconds, 60 s for an unknown notebook): the scheduler starts the ready task with the
    longest one first."""
    after: dict = {t: [u for u, d in deps.items() if t in d] for t in deps}
    memo: dict = {}

    def level(t) -> float:
        if t not in memo:
            memo[t] = task_cost(t, cost) + max((level(u) for u in after[t]), default=0.0)
        return memo[t]

    return {t: level(t) for t in deps}


def _build_features(only: str | None = None, threads: dict[str, str] | None = None) -> RunInfo:
    """``python -m clickvision.features build [--only ONLY]`` in a child process with this process's
    environment less the variables that forbid reading features; ``threads`` (:func:`~.threads.thread_env`)
    sets its thread count, the share of one worker when it runs beside notebooks. The cache does not
    depend on it: the features are the same bit for bit on 1 and 2 threads (tests/test_features.py)."""
    import subprocess

    from .features import FEATURE_SETS_ENV, NO_FEATURES_ENV

    env = {k: v for k, v in os.environ.items() if k not in (NO_FEATURES_ENV, FEATURE_SETS_ENV)}
    env.update(threads or {})
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "clickvision.features", "build", *(["--only", only] if only else [])],
                          capture_output=True, text=True, env=env)
    print(proc.stdout, end="", flush=True)
    name = feature_task(only) if only else "features"
    info = RunInfo(notebook=name, output="", returncode=proc.returncode, wall_s=time.perf_counter() - t0,
                   peak_mb=float("nan"), log_tail=(proc.stdout + proc.stderr)[-3000:])
    print(("ok" if info.ok else "FAILED") + f" feature cache{' ' + only if only else ''}: {info.wall_s:.0f} s",
          flush=True)
    return info


def _pick(ready: list, prio: dict, order: dict):
    """The ready task a free worker starts: the highest ``prio``, then the earliest in ``order``."""
    return min(ready, key=lambda t: (-prio[t], order[t]))


def simulate(deps: dict, prio: dict, order: dict, workers: int, cost: dict[str, float]) -> tuple[float, dict]:
    """The schedule :func:`_schedule` runs when every task takes :func:`task_cost` seconds (same
    rule, a virtual clock): ``(makespan, {task: (start, end)})``. For estimates and tests."""
    clock, pending, done, running, spans = 0.0, list(deps), set(), [], {}
    while pending or running:
        while len(running) < max(1, workers):
            ready = [t for t in pending if deps[t] <= done]
            if not ready:
                break
            task = _pick(ready, prio, order)
            pending.remove(task)
            spans[task] = (clock, clock + task_cost(task, cost))
            running.append(task)
        if not running:
            raise ValueError(f"tasks wait for something that never runs: {pending}")
        clock = min(spans[t][1] for t in running)
        for task in [t for t in running if spans[t][1] <= clock]:
            running.remove(task)
            done.add(task)
    return clock, spans


def _schedule(deps: dict, prio: dict, order: dict, workers: int, run) -> tuple[list, bool]:
    """Run every task of ``deps`` on ``workers`` threads: a free worker starts the ready task (all it
    waits for finished) with the highest ``prio``, then the earliest in ``order``. ``run(task)``
    returns ``(ok, result)``; after a failure nothing new starts. Returns the results and whether
    every task succeeded. An exception ``run`` raises counts as a failure (the other workers finish
    what they run, then stop) and is raised here once they have: a dead worker must not leave the
    others waiting for a task that never ends."""
    cond = threading.Condition()
    pending, done, results = list(deps), set(), []
    state: dict = {"failed": False, "error": None}

    def worker() -> None:
        while True:
            with cond:
                while True:
                    if state["failed"] or not pending:
                        return
                    ready = [t for t in pending if deps[t] <= done]
                    if ready:
                        break
                    cond.wait()
                task = _pick(ready, prio, order)
                pending.remove(task)
            try:
                ok, result = run(task)
            except BaseException as exc:  # noqa: BLE001 - re-raised below, in the calling thread
                with cond:
                    state["failed"], state["error"] = True, state["error"] or exc
                    cond.notify_all()
                return
            with cond:
                results.append(result)
                if ok:
                    done.add(task)
                else:
                    state["failed"] = True
                cond.notify_all()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(max(1, workers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if state["error"] is not None:
        raise state["error"]
    return results, not state["failed"]


def run_all(profile: str = "default", only: str | None = None, timeout_s: int = 3600,
            jobs: int | None = None, features: bool = False) -> list[RunInfo]:
    """Execute every notebook in place at ``profile``; stop at the first failure.

    ``jobs`` workers (default: ``CLICKVISION_WORKBOOK_JOBS``, else the usable CPUs) run notebooks
    side by side, each notebook with ``cpus // jobs`` threads, so they share the cores without
    oversubscribing them. A notebook starts once what it reads has finished (:func:`dependencies`:
    its folder's order, :data:`READS`); among the ready ones the one with the longest remaining
    path (:func:`priorities`, recorded CPU seconds) goes first. ``features``: the feature cache is
    built part by part (:data:`FEATURE_TASKS`, ``clickvision.features build --only NAME``, with one
    worker's share of the threads), one part at a time on one worker, while the others run the notebooks that read no
    features (:data:`FEATURE_FREE`, with reading features forbidden) and then each notebook once the
    parts it reads (:data:`FEATURE_READS`) are built (with reading any other part forbidden). The
    summaries (``run_last``) run after everything, alone. A failure stops every running notebook
    and starts no other. ``jobs=1`` is the plain sequential run.
    """
    from .features import FEATURE_SETS_ENV, NO_FEATURES_ENV
    from .threads import share, thread_env, usable_cpus

    nbs = notebooks(only)
    body, last = [nb for nb in nbs if not _runs_last(nb)], [nb for nb in nbs if _runs_last(nb)]
    if jobs is None:
        env_jobs = os.environ.get("CLICKVISION_WORKBOOK_JOBS", "").strip()
        jobs = int(env_jobs) if env_jobs else usable_cpus()
    if not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be a positive integer, got {jobs!r}")
    infos: list[RunInfo] = []
    if jobs == 1 or len(body) <= 1:
        if features:
            infos.append(_build_features())
            if not infos[-1].ok:
                return infos
        for nb in body:
            infos.append(_run_in_place(nb, profile, timeout_s))
            if not infos[-1].ok:
                return infos
    else:
        cancel = threading.Event()
        env = thread_env(share(jobs))
        deps = dependencies(body, features)
        prio = priorities(deps, _recorded_cpu_s(profile))
        order = {t: i for i, t in enumerate((list(FEATURE_TASKS) if features else []) + body)}
        print(f"{jobs} notebooks side by side, {env['OMP_NUM_THREADS']} thread(s) each; each starts when what it "
              f"reads has finished" + (f" (feature cache built part by part, {', '.join(FEATURE_ORDER)}, beside the "
                                       "notebooks; each starts once the parts it reads are built)" if features else ""),
              flush=True)

        def run(task) -> tuple[bool, RunInfo]:
            if isinstance(task, str):  # one worker's share of the cores, as a notebook: no oversubscription
                info = _build_features(task.removeprefix(FEATURE_PREFIX), env)
            else:
                nb_env = env
                if features:
                    reads = feature_reads(task)
                    nb_env = {**env, NO_FEATURES_ENV: "1"} if not reads else {**env, FEATURE_SETS_ENV: ",".join(reads)}
                info = _run_in_place(task, profile, timeout_s, nb_env, cancel)
            if not info.ok:
                cancel.set()
            return info.ok, info

        infos, ok = _schedule(deps, prio, order, jobs, run)
        if not ok:
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
                   help="notebooks run side by side (each once what it reads has finished; default: "
                        "CLICKVISION_WORKBOOK_JOBS or the CPUs; 1: one notebook at a time)")
    r.add_argument("--features", action="store_true",
                   help="build the feature cache first, part by part, beside the notebooks (each starts once the "
                        "parts it reads are built)")
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
        infos = run_all(args.profile, args.only, jobs=args.jobs, features=args.features)
    else:
        out = args.out or Path(tempfile.mkdtemp(prefix="clickvision-smoke-"))
        infos = smoke(out, args.only)
    bad = [i for i in infos if not i.ok]
    for i in bad:
        print(f"FAILED: {i.notebook}\n{i.log_tail}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
