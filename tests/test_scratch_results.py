"""The test session's scratch results folder is restored to the committed copy before each notebook."""
import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _root_conftest(monkeypatch, tmp_path):
    """The root conftest loaded as a plain module, its functions to test; the environment set as a user's
    own results folder, so loading it makes no scratch folder and changes no variable of this session."""
    monkeypatch.setenv("CLICKVISION_RESULTS_DIR", str(tmp_path / "user-results"))
    spec = importlib.util.spec_from_file_location("clickvision_root_conftest", ROOT / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_restore_puts_back_the_committed_files_in_place(tmp_path, monkeypatch):
    module = _root_conftest(monkeypatch, tmp_path)
    assert module.SCRATCH_RESULTS is None  # a user's folder is never restored
    restore = module.restore_scratch_results
    committed = tmp_path / "committed"
    (committed / "runs").mkdir(parents=True)
    (committed / "A.04.csv").write_text("metric,value\nselected_tau,0.1\n")
    (committed / "runs" / "log.txt").write_text("not copied")
    scratch = tmp_path / "scratch"
    restore(scratch, committed)
    assert sorted(p.name for p in scratch.iterdir()) == ["A.04.csv"]
    # an earlier notebook's run rewrites a selection and adds a file ...
    (scratch / "A.04.csv").write_text("metric,value\nselected_tau,0.2\n")
    (scratch / "A.07.csv").write_text("metric,value\nselected_lambda,0.4\n")
    (scratch / "sub").mkdir()
    restore(scratch, committed)
    # ... and the next notebook reads the committed copy again, at the same path
    assert sorted(p.name for p in scratch.iterdir()) == ["A.04.csv"]
    assert (scratch / "A.04.csv").read_text() == "metric,value\nselected_tau,0.1\n"


def test_this_session_reads_a_scratch_copy_not_the_committed_folder():
    import os

    scratch = Path(os.environ["CLICKVISION_RESULTS_DIR"])
    assert scratch.resolve() != (ROOT / "results").resolve()
    assert (scratch / "claims.csv").exists() == (ROOT / "results" / "claims.csv").exists()


def test_each_test_process_has_its_own_scratch_folder():
    import os

    scratch = os.environ["CLICKVISION_RESULTS_DIR"]
    assert os.environ.get("CLICKVISION_TEST_SCRATCH") == scratch  # made by this session's conftest
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker:  # under xdist: this worker's own folder, not the controller's or another worker's
        assert f"clickvision-test-{worker}-" in scratch
