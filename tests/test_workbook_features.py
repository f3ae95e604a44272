"""The workbook's feature cache as one task per part (features:openclipart, features:emoji,
features:vendors): each notebook waits only for the parts it reads, the parts are built one after
another (Open Clip Art first), ``clickvision.features build --only NAME`` builds one part, reading a
part a notebook did not wait for raises, and the schedule no longer leaves a core idle."""
from __future__ import annotations

import threading
from pathlib import Path
import time
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from clickvision import data, features, paths, workbook
from clickvision.data.base import ImageSet
from clickvision.data.emoji import ICONIFY_VENDORS

#: CPU seconds of the default profile (results/timings.csv, 2 cores, 2026-12-02), frozen here so the
#: schedule test does not move with every rerun
RECORDED = {
    "00.01": 13.3, "00.02": 69.1, "A.01": 36.0, "A.02": 47.5, "A.03": 94.3, "A.04": 135.3, "A.05": 88.7,
    "A.06": 280.8, "A.07": 82.4, "A.08": 79.5, "A.09": 97.3, "A.10": 113.4, "A.11": 183.2, "A.12": 82.1,
    "A.13": 186.8, "A.14": 241.9, "B.01": 46.5, "B.02": 190.9, "C.01": 16.6, "C.02": 60.8, "C.03": 240.4,
    "C.04": 216.7, "D.01": 179.6, "D.02": 41.0, "D.03": 178.8, "D.04": 130.1, "D.05": 260.3, "D.06": 46.1,
}


def _body():
    return [nb for nb in workbook.notebooks() if not workbook._runs_last(nb)]


def _feature_waits(deps, nb):
    return {t for t in deps[nb] if isinstance(t, str)}


def test_each_notebook_waits_only_for_the_parts_it_reads():
    body = _body()
    by = {workbook.section(nb): nb for nb in body}
    deps = workbook.dependencies(body, features=True)
    task = workbook.feature_task
    # the parts are built one after another, Open Clip Art first
    assert workbook.FEATURE_TASKS == ("features:openclipart", "features:emoji", "features:vendors")
    assert deps["features:openclipart"] == set()
    assert deps["features:emoji"] == {"features:openclipart"} and deps["features:vendors"] == {"features:emoji"}
    assert _feature_waits(deps, by["D.03"]) == {task("openclipart")}
    assert _feature_waits(deps, by["D.05"]) == {task("openclipart")}
    assert _feature_waits(deps, by["A.06"]) == {task("emoji")}
    assert _feature_waits(deps, by["A.14"]) == {task("emoji"), task("vendors")}
    assert _feature_waits(deps, by["00.02"]) == {task("emoji"), task("vendors")}
    assert _feature_waits(deps, by["C.03"]) == {task("openclipart"), task("emoji")}
    for s in workbook.FEATURE_FREE:
        assert _feature_waits(deps, by[s]) == set() and workbook.feature_reads(s) == ()
    assert workbook.feature_reads("Z.99") == workbook.FEATURE_ORDER  # unlisted: waits for every part
    # every listed part exists and every listed section is a notebook of the workbook
    assert all(set(v) <= set(features.CACHE_SETS) for v in workbook.FEATURE_READS.values())
    assert not set(workbook.FEATURE_READS) & workbook.FEATURE_FREE
    assert set(workbook.FEATURE_ORDER) == set(features.CACHE_SETS)
    # without --features nothing waits for the cache
    assert not any(isinstance(t, str) for d in workbook.dependencies(body).values() for t in d)


def test_feature_tasks_are_prioritised_with_recorded_or_measured_costs():
    body = _body()
    deps = workbook.dependencies(body, features=True)
    assert workbook.task_cost("features:emoji", {}) == workbook.FEATURE_COST["features:emoji"]
    assert workbook.task_cost("features:emoji", {"features:emoji": 50.0}) == 50.0  # a timings.csv row wins
    prio = workbook.priorities(deps, {})
    order = {t: i for i, t in enumerate(list(workbook.FEATURE_TASKS) + body)}
    _, spans = workbook.simulate(deps, prio, order, 2, {})
    starts = sorted(workbook.FEATURE_TASKS, key=lambda t: spans[t][0])
    assert tuple(starts) == workbook.FEATURE_TASKS and spans["features:openclipart"][0] == 0.0
    # one part at a time: each starts once the one before it ends
    for a, b in zip(workbook.FEATURE_TASKS, workbook.FEATURE_TASKS[1:]):
        assert spans[b][0] >= spans[a][1]


def test_the_split_cache_leaves_no_core_idle():
    """The whole workbook at the recorded costs on 2 workers: one cache task (471 s) left a core idle
    for about 230 s; the three parts (110 + 263 + 90 s) leave next to none."""
    body = _body()
    cost = {str(nb.relative_to(paths.NOTEBOOKS_DIR)): RECORDED.get(workbook.section(nb), 60.0) for nb in body}
    # the parts' costs of that measurement, not today's FEATURE_COST (the property is the schedule's)
    cost.update({"features:openclipart": 110.0, "features:emoji": 263.0, "features:vendors": 90.0})
    after = workbook.dependencies(body, features=True)
    before = {nb: {t for t in d if not isinstance(t, str)} | ({"features"} if workbook.feature_reads(nb) else set())
              for nb, d in after.items() if not isinstance(nb, str)}
    before["features"] = set()
    spans = {}
    for name, deps, c in (("before", before, {**cost, "features": 471.0}), ("after", after, cost)):
        order = {t: i for i, t in enumerate([t for t in deps if isinstance(t, str)] + body)}
        makespan, s = workbook.simulate(deps, workbook.priorities(deps, c), order, 2, c)
        work = sum(e - b for b, e in s.values())
        spans[name] = (makespan, 2 * makespan - work)
    (mk0, idle0), (mk1, idle1) = spans["before"], spans["after"]
    assert idle0 > 150 and idle1 < 60 and mk1 < mk0 - 80


def test_schedule_starts_a_notebook_once_its_part_is_built():
    """``_schedule`` with sleeping fake tasks: D.03 (Open Clip Art) runs while emoji is still being built."""
    deps = {"features:openclipart": set(), "features:emoji": {"features:openclipart"},
            "free": set(), "d03": {"free", "features:openclipart"}, "a01": {"features:emoji"}}
    cost = {"features:openclipart": 1.0, "features:emoji": 5.0, "free": 2.0, "d03": 1.0, "a01": 1.0}
    prio = workbook.priorities(deps, cost)
    order = {t: i for i, t in enumerate(deps)}
    spans, lock = {}, threading.Lock()

    def run(task):
        t0 = time.monotonic()
        time.sleep(cost[task] * 0.2)
        with lock:
            spans[task] = (t0, time.monotonic())
        return True, task

    _, ok = workbook._schedule(deps, prio, order, 2, run)
    assert ok and spans["d03"][0] < spans["features:emoji"][1]  # did not wait for the whole cache
    assert spans["d03"][0] >= spans["features:openclipart"][1] and spans["a01"][0] >= spans["features:emoji"][1]
    _, virtual = workbook.simulate(deps, prio, order, 2, cost)
    assert virtual["d03"][0] < virtual["features:emoji"][1]


@pytest.fixture()
def fake_extraction(monkeypatch):
    """The default loaders and extract_kinds replaced: no images, no backbone; returns the calls."""
    calls = []

    def fake_set(name, n):
        items = pd.DataFrame({"key": [f"k{i}" for i in range(n)], "path": "", "label": "x", "split": "train"})
        return ImageSet(name, items, {})

    def load_emoji(vendors=("google", "twitter", "openmoji")):
        vendors = list(vendors)
        base = set(vendors) <= {"google", "twitter", "openmoji"}
        return fake_set("emoji" if base else f"emoji[{'+'.join(vendors)}]", 3)

    def extract_kinds(images, kinds, image_size=128, **kw):
        calls.append((images.name, tuple(kinds), image_size))
        return {k: np.zeros((len(images), 2), np.float32) for k in kinds}

    monkeypatch.setattr(data, "load_emoji", load_emoji)
    monkeypatch.setattr(data, "load_openclipart", lambda: fake_set("openclipart", 4))
    monkeypatch.setattr(features, "extract_kinds", extract_kinds)
    return calls


def test_build_only_builds_that_part(fake_extraction, capsys):
    assert features.main(["build", "--only", "openclipart"]) == 0
    assert fake_extraction == [("openclipart", ("pooled", "cut1"), 128)]
    fake_extraction.clear()
    assert features.main(["build", "--only", "vendors"]) == 0
    assert fake_extraction == [(f"emoji[{v}]", features.VENDOR_KINDS, 128) for v in ICONIFY_VENDORS]
    fake_extraction.clear()
    assert features.main(["build", "--only", "emoji", "--only", "openclipart"]) == 0
    assert [c[0] for c in fake_extraction] == ["emoji", "openclipart"]
    assert fake_extraction[0][1] == ("pooled", "map", "cut1")
    fake_extraction.clear()
    # no --only: every part, in the order `make features` always used (the same extraction calls)
    assert features.main(["build"]) == 0
    assert fake_extraction == ([("emoji", ("pooled", "map", "cut1"), 128), ("openclipart", ("pooled", "cut1"), 128)]
                               + [(f"emoji[{v}]", features.VENDOR_KINDS, 128) for v in ICONIFY_VENDORS])
    with pytest.raises(SystemExit):
        features.main(["build", "--only", "fashion-mnist"])
    with pytest.raises(ValueError, match="unknown feature set"):
        features.build_default_cache(only=["nope"])


def test_reading_a_part_not_waited_for_raises(monkeypatch):
    assert [features.cache_set(n) for n in ("emoji", "emoji[fluent-flat]", "emoji[all]", "openclipart", "cifar")] \
        == ["emoji", "vendors", "vendors", "openclipart", None]
    monkeypatch.delenv(features.NO_FEATURES_ENV, raising=False)
    monkeypatch.setenv(features.FEATURE_SETS_ENV, "openclipart")
    features.check_feature_access("openclipart")
    features.check_feature_access("cifar")  # not in the default cache: computed on demand, allowed
    with pytest.raises(RuntimeError, match="may read only the feature sets openclipart.*not 'emoji'"):
        features.extract_kinds(SimpleNamespace(name="emoji"), ["pooled"])  # raises before any work
    with pytest.raises(RuntimeError, match="not 'vendors'"):
        features.extract_features(SimpleNamespace(name="emoji[noto]"))
    monkeypatch.setenv(features.FEATURE_SETS_ENV, "emoji,vendors")
    features.check_feature_access("emoji[noto]")
    monkeypatch.setenv(features.NO_FEATURES_ENV, "1")
    with pytest.raises(RuntimeError, match="runs without image features"):
        features.check_feature_access("emoji")


def test_notebooks_that_choose_a_target_vendor_wait_for_the_vendor_features():
    """A notebook with a target_vendor(s) parameter may load an Iconify vendor's features (emoji[<vendor>],
    built by features:vendors): its FEATURE_READS entry must name 'vendors', or the workbook refuses the
    read at run time (A.07 / A.08 did once they selected on both targets)."""
    import json

    root = Path(__file__).resolve().parents[1] / "notebooks"
    for nb in sorted(root.glob("*/*.ipynb")):
        cells = json.loads(nb.read_text())["cells"]
        params = next((c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])), None)
        if params is not None and "target_vendor" in "".join(params["source"]):
            assert "vendors" in workbook.feature_reads(workbook.section(nb)), nb.name
