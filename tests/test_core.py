"""paths, runtime (seeding, device), io (atomic writes), plots."""
import os
from pathlib import Path

import numpy as np
import pytest
import torch

import clickvision as cv
from clickvision import io, paths, plots, runtime


def test_paths_resolve_from_package_not_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    import importlib

    p = importlib.reload(paths)
    assert (p.PROJ_ROOT / "pyproject.toml").exists()
    assert p.PROJ_ROOT == Path(cv.__file__).resolve().parents[2]
    assert p.DATA_DIR == p.PROJ_ROOT / "data"
    assert p.NOTEBOOKS_DIR.is_dir()


def test_output_dirs_can_be_redirected(tmp_path, monkeypatch):
    import importlib

    monkeypatch.setenv("CLICKVISION_RESULTS_DIR", str(tmp_path / "r"))
    p = importlib.reload(paths)
    assert p.RESULTS_DIR == tmp_path / "r"
    monkeypatch.undo()
    importlib.reload(paths)


def test_seed_everything_reproducible():
    runtime.seed_everything(3)
    a = torch.randn(5), np.random.rand(3)
    g1 = runtime.seed_everything(3)
    b = torch.randn(5), np.random.rand(3)
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert g1.integers(0, 1000) == runtime.seed_everything(3).integers(0, 1000)
    with pytest.raises(ValueError, match="seed"):
        runtime.seed_everything(-1)


def test_device_choice_and_amp():
    dev = runtime.get_device()
    assert dev.type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert runtime.get_device("cpu").type == "cpu"
    assert not runtime.use_amp("cpu")
    with runtime.autocast("cpu"):
        x = torch.ones(2, 2) @ torch.ones(2, 2)
    assert x.dtype == torch.float32
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA"):
            runtime.get_device("cuda")


def test_headless_flag(monkeypatch):
    monkeypatch.setenv("CLICKVISION_HEADLESS", "1")
    assert runtime.is_headless()
    assert runtime.progress(range(3)).disable
    monkeypatch.setenv("CLICKVISION_HEADLESS", "0")
    assert not runtime.is_headless()


def test_atomic_write_keeps_old_file_on_failure(tmp_path):
    target = tmp_path / "a.txt"
    io.atomic_write_text(target, "old")
    with pytest.raises(RuntimeError):
        with io.atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_savefig_stable_bytes(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    monkeypatch.setattr(paths, "FIGURES_DIR", tmp_path)
    plots.setup()
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    p1 = plots.savefig(fig, "T/line")
    b1 = p1.read_bytes()
    p2 = plots.savefig(fig, "T/line")
    assert p1 == tmp_path / "T" / "line.png" and p2.read_bytes() == b1
    assert (tmp_path / "T" / "line.pdf").exists()
    assert b"Software" not in b1
    with pytest.raises(ValueError, match="paper/name"):
        plots.savefig(fig, "noslash")
    plt.close(fig)


def test_a_run_with_other_parameters_keeps_its_figures_away_from_the_committed_ones(tmp_path, monkeypatch):
    """A smoke run, a sweep point or a changed parameter (params.check saw non-default values) writes
    its figures under results/runs/figures/<run id>/, never over the project's figures/; the
    committed run, and any folder set by CLICKVISION_FIGURES_DIR, keep the usual place."""
    from clickvision import params, results

    monkeypatch.setattr(paths, "PROJ_ROOT", tmp_path)
    monkeypatch.setattr(paths, "FIGURES_DIR", tmp_path / "figures")
    monkeypatch.setattr(paths, "RUNS_DIR", tmp_path / "results" / "runs")
    monkeypatch.delenv("CLICKVISION_FIGURES_DIR", raising=False)
    monkeypatch.setitem(params._STATE, "defaults", {"profile": "default", "hidden": 16})
    monkeypatch.setitem(params._STATE, "annotations", {})
    monkeypatch.setitem(params._STATE, "injected", set())
    monkeypatch.delitem(params._STATE, "run", raising=False)
    assert plots.figure_path("T/line") == tmp_path / "figures" / "T" / "line.png"  # no check yet
    committed = params.check({"profile": "default", "hidden": 16})
    assert params.current_run() == (committed, True)
    assert plots.figure_path("T/line") == tmp_path / "figures" / "T" / "line.png"
    for other in ({"profile": "smoke", "hidden": 16}, {"profile": "default", "hidden": 32}):
        checked = params.check(other)
        assert params.current_run() == (checked, False)
        assert plots.figure_path("T/line", "pdf") == (tmp_path / "results" / "runs" / "figures"
                                                      / results.run_id(checked) / "T" / "line.pdf")
    monkeypatch.setenv("CLICKVISION_FIGURES_DIR", str(tmp_path / "figures"))  # set on purpose: used as it is
    assert plots.figure_path("T/line") == tmp_path / "figures" / "T" / "line.png"


def test_click_submodules_load_lazily():
    import subprocess
    import sys

    code = "import clickvision as cv; print(cv.click.build.__name__, cv.click.simulator.__name__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["clickvision.click.build", "clickvision.click.simulator"]


def test_every_top_level_module_is_reachable_as_cv_attribute():
    import pkgutil

    import clickvision as cv

    names = {m.name for m in pkgutil.iter_modules(cv.__path__) if not m.name.startswith("_")}
    missing = names - cv._SUBMODULES
    assert not missing, f"add {sorted(missing)} to clickvision._SUBMODULES (cv.<name> raises otherwise)"


def test_lazy_submodules_missing_is_attribute_error_and_aliases_resolve():
    import pytest

    import clickvision as cv
    from clickvision._lazy import submodule_getattr

    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        cv.losses.nope
    assert cv.data.load_emoji.__module__ == "clickvision.data.emoji"
    getattr_ = submodule_getattr("clickvision", {"sha": "io"})
    with pytest.raises(AttributeError):  # the alias names a submodule that has no such attribute
        getattr_("sha")


def test_seed_everything_sets_the_deterministic_flag_in_a_fresh_process():
    """The kernels' determinism flag is on (warn only) after seeding, with or without the compiler
    imported (the fast path skips importing torch._inductor on a CPU-only process)."""
    import subprocess
    import sys

    code = ("import sys, torch; from clickvision.runtime import seed_everything; seed_everything(0); "
            "print(torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(), "
            "'torch._inductor.config' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[:2] == ["True", "True"]
    import torch
    from clickvision.runtime import seed_everything

    seed_everything(1)
    assert torch.are_deterministic_algorithms_enabled() and torch.is_deterministic_algorithms_warn_only_enabled()
