"""The workbook's parallel lanes: paper folders as units balanced by recorded cost, each lane
in order with cpus // lanes threads, summaries after all lanes, a failure stops the lanes."""
from __future__ import annotations

import json

import nbformat
import pytest
from clickvision import paths, workbook
from clickvision.threads import share


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


def test_plan_keeps_folders_together_and_balances_cost(book):
    root, _ = book
    nbs = workbook.notebooks()
    cost = {"A-x/A.01.ipynb": 100.0, "A-x/A.02.ipynb": 50.0, "B-y/B.01.ipynb": 120.0}
    body = [nb for nb in nbs if "00-w" not in str(nb)]
    lanes = workbook.plan_lanes(body, 2, cost)
    assert [[nb.stem for nb in lane] for lane in lanes] == [["A.01", "A.02"], ["B.01"]]
    assert [[nb.stem for nb in lane] for lane in workbook.plan_lanes(body, 1, cost)] == [["A.01", "A.02", "B.01"]]
    assert len(workbook.plan_lanes(body, 8, cost)) == 2  # never more lanes than folders


def test_lanes_run_side_by_side_and_the_summary_last(book):
    root, log = book
    infos = workbook.run_all(jobs=2)
    assert [i.ok for i in infos] == [True] * 4
    runs = [json.loads(line) for line in log.read_text().splitlines()]
    order = [r["nb"] for r in runs]
    assert order.index("A.01") < order.index("A.02") and order[-1] == "00.03"
    threads = {r["nb"]: r["threads"] for r in runs}
    assert threads["A.01"] == threads["B.01"] == str(share(2))
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
