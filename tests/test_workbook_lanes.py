"""The workbook's parallel runs: notebooks side by side with cpus // jobs threads, each starting once
what it reads has finished (its folder's order, workbook.READS, the feature cache), the longest
remaining path first; summaries after everything; a failure stops the run."""
from __future__ import annotations

import json

import nbformat
import pytest
from clickvision import paths, workbook
from clickvision.threads import share, thread_env


def _notebook(path, body: str, run_last: bool = False) -> None:
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('profile = "default"')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(body)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    if run_last:
        nb.metadata["clickvision"] = {"run_last": True}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)


@pytest.fixture()
def book(tmp_path, monkeypatch):
    root = tmp_path / "notebooks"
    monkeypatch.setattr(paths, "NOTEBOOKS_DIR", root)
    monkeypatch.setattr(paths, "PROJ_ROOT", tmp_path)
    monkeypatch.setattr(paths, "RESULTS_DIR", tmp_path / "results")
    (tmp_path / "results").mkdir()
    log = tmp_path / "log.jsonl"
    record = ("import json, os, time\n"
              f"open({str(log)!r}, 'a').write(json.dumps({{'nb': '{{name}}', 'threads': os.environ.get('OMP_NUM_THREADS'),"
              " 't': time.time()}) + '\\n')\n")
    for name in ("A.01", "A.02"):
        _notebook(root / "A-x" / f"{name}.ipynb", record.replace("{name}", name))
    _notebook(root / "B-y" / "B.01.ipynb", record.replace("{name}", "B.01"))
    _notebook(root / "00-w" / "00.03.ipynb", record.replace("{name}", "00.03"), run_last=True)
    return root, log


def test_dependencies_follow_folder_order_reads_and_the_feature_cache(book, monkeypatch):
    root, _ = book
    _notebook(root / "A-x" / "A.03.ipynb", "pass")
    nbs = workbook.notebooks()
    by = {nb.stem: nb for nb in nbs}
    deps = workbook.dependencies([nb for nb in nbs if nb.stem != "00.03"])
    assert deps[by["A.01"]] == set() and deps[by["A.02"]] == {by["A.01"]} and deps[by["A.03"]] == {by["A.02"]}
    monkeypatch.setattr(workbook, "UNORDERED_FOLDERS", frozenset({"A-x"}))
    monkeypatch.setattr(workbook, "READS", {"A.03": ("A.01", "B.01", "Z.99")})  # Z.99 not in this run
    monkeypatch.setattr(workbook, "FEATURE_FREE", frozenset({"A.01"}))
    monkeypatch.setattr(workbook, "FEATURE_READS", {"A.02": ("emoji",)})  # the others: every part
    deps = workbook.dependencies([nb for nb in nbs if nb.stem != "00.03"], features=True)
    oc, em, ve = workbook.FEATURE_TASKS
    assert deps[oc] == set() and deps[em] == {oc} and deps[ve] == {em} and deps[by["A.01"]] == set()
    assert deps[by["A.02"]] == {em}
    assert deps[by["A.03"]] == {by["A.01"], by["B.01"], oc, em, ve}
    cost = {"A-x/A.01.ipynb": 10.0, "A-x/A.02.ipynb": 50.0, "A-x/A.03.ipynb": 100.0, "B-y/B.01.ipynb": 5.0,
            oc: 30.0, em: 20.0, ve: 10.0}
    prio = workbook.priorities(deps, cost)
    assert prio[by["A.03"]] == 100 and prio[by["B.01"]] == 105 and prio[ve] == 115  # -> B.01 -> A.03
    assert prio[em] == 135 and prio[oc] == 165
    assert prio[by["A.01"]] == 110 and prio[by["A.02"]] == 50


def test_schedule_starts_the_longest_path_first_and_respects_waits():
    deps = {"a": set(), "b": set(), "c": {"a"}, "d": {"b", "c"}}
    prio = {"a": 1.0, "b": 5.0, "c": 1.0, "d": 1.0}
    started = []

    def run(task):
        started.append(task)
        return True, task

    results, ok = workbook._schedule(deps, prio, {t: i for i, t in enumerate("abcd")}, 1, run)
    assert ok and started == ["b", "a", "c", "d"] and results == started
    started.clear()
    results, ok = workbook._schedule(deps, prio, {t: i for i, t in enumerate("abcd")}, 1,
                                     lambda t: (started.append(t) or t != "a", t))
    assert not ok and started == ["b", "a"]  # after a's failure nothing new starts


def test_a_task_that_raises_fails_the_schedule_instead_of_hanging_it():
    deps = {"a": set(), "b": set(), "c": {"a"}}
    prio = {"a": 2.0, "b": 1.0, "c": 1.0}
    started = []

    def run(task):
        started.append(task)
        if task == "a":
            raise TypeError("boom in a")
        return True, task

    with pytest.raises(TypeError, match="boom in a"):
        workbook._schedule(deps, prio, {t: i for i, t in enumerate("abc")}, 2, run)
    assert "c" not in started  # nothing waiting on the failed task starts


def test_lanes_run_side_by_side_and_the_summary_last(book):
    root, log = book
    infos = workbook.run_all(jobs=2)
    assert [i.ok for i in infos] == [True] * 4
    runs = [json.loads(line) for line in log.read_text().splitlines()]
    order = [r["nb"] for r in runs]
    assert order.index("A.01") < order.index("A.02") and order[-1] == "00.03"
    threads = {r["nb"]: r["threads"] for r in runs}
    assert threads["A.01"] == threads["B.01"] == str(share(2))
    assert max(r["t"] for r in runs if r["nb"] != "00.03") <= [r["t"] for r in runs if r["nb"] == "00.03"][0]
    timings = (paths.RESULTS_DIR / workbook.TIMINGS).read_text()
    assert all(n in timings for n in ("A.01", "A.02", "B.01", "00.03"))


def test_a_failure_stops_the_lanes_and_keeps_the_committed_copy(book):
    root, log = book
    bad = root / "A-x" / "A.01.ipynb"
    _notebook(bad, "raise RuntimeError('asked to fail')")
    before = bad.read_text()
    infos = workbook.run_all(jobs=2)
    failed = [i for i in infos if not i.ok]
    assert len(failed) == 1 and "A.01" in failed[0].notebook and "asked to fail" in failed[0].log_tail
    assert bad.read_text() == before
    ran = [json.loads(line)["nb"] for line in log.read_text().splitlines()] if log.exists() else []
    assert "A.02" not in ran and "00.03" not in ran  # A's lane stopped; the summary did not run


def test_features_are_built_beside_the_feature_free_notebooks(book, monkeypatch):
    root, log = book
    monkeypatch.setattr(workbook, "FEATURE_FREE", frozenset({"B.01"}))
    monkeypatch.setattr(workbook, "FEATURE_READS", {"A.01": ("openclipart",)})  # A.02: every part
    record = ("import json, os, time\n"
              "open({log!r}, 'a').write(json.dumps({{'nb': '{name}', 'no_features': "
              "os.environ.get('CLICKVISION_NO_FEATURES'), 'sets': os.environ.get('CLICKVISION_FEATURE_SETS'), "
              "'t': time.time()}}) + '\\n')\n")
    for folder, name in (("B-y", "B.01"), ("A-x", "A.01"), ("A-x", "A.02")):
        _notebook(root / folder / f"{name}.ipynb", record.format(log=str(log), name=name))
    built = {}

    def fake_build(only=None, threads=None):
        import time

        assert threads == thread_env(share(2))  # one worker's share of the cores, as each notebook
        t0 = time.time()
        while (only == "openclipart" and time.time() < t0 + 60
               and not (log.exists() and "B.01" in log.read_text())):
            time.sleep(0.2)  # the first part lasts until B.01 has run beside it (or a minute)
        built[only] = (t0, time.time())
        return workbook.RunInfo(workbook.feature_task(only), "", 0, 3.0, float("nan"), "")

    monkeypatch.setattr(workbook, "_build_features", fake_build)
    infos = workbook.run_all(jobs=2, features=True)
    assert all(i.ok for i in infos) and len(infos) == 7
    assert sorted(built, key=lambda k: built[k][0]) == list(workbook.FEATURE_ORDER)  # one part after another
    runs = {json.loads(line)["nb"]: json.loads(line) for line in log.read_text().splitlines()}
    assert runs["B.01"]["no_features"] == "1" and runs["B.01"]["t"] < built["openclipart"][1]  # beside the build
    assert runs["A.01"]["t"] >= built["openclipart"][1] and runs["A.01"]["sets"] == "openclipart"
    assert runs["A.02"]["t"] >= built["vendors"][1] and runs["A.02"]["sets"] == "openclipart,emoji,vendors"
    assert runs["A.01"]["no_features"] is None and runs["B.01"]["sets"] is None

