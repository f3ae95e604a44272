"""The build orchestrator and ``python -m clickvision.data``: order, skipping, missing sources."""
import textwrap

import pytest

from clickvision import paths
from clickvision.data import build, manifest
from clickvision.data.__main__ import main

FAKE_BUILDERS = '''
from pathlib import Path
from clickvision import paths
from clickvision.data import manifest
from clickvision.data.base import MissingSourceError

CALLS = []

def build_alpha(force=False):
    CALLS.append("alpha")
    params = {"n": 1}
    if not force and manifest.is_built("alpha", params):
        return manifest.load_manifest()["alpha"]
    out = Path(paths.PROCESSED_DIR) / "alpha.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("a,b\\n1,2\\n")
    return manifest.record_build("alpha", {"source": "fake", "counts": {"rows": 1}, "params": params}, [out])

def build_missing(force=False):
    CALLS.append("missing")
    raise MissingSourceError("install it with `apt-get install --no-install-recommends fake-package`")

def build_beta(force=False):
    CALLS.append("beta")
    params = {}
    if not force and manifest.is_built("beta", params):
        return manifest.load_manifest()["beta"]
    out = Path(paths.PROCESSED_DIR) / "beta.txt"
    out.write_text("beta")
    return manifest.record_build("beta", {"source": "fake", "counts": {}, "params": params}, [out])
'''


@pytest.fixture
def fake(tmp_path, monkeypatch):
    """Fake builders in a scratch module; manifest and outputs in a scratch project."""
    for name, rel in (("PROJ_ROOT", "."), ("DATA_DIR", "data"), ("PROCESSED_DIR", "data/processed")):
        monkeypatch.setattr(paths, name, tmp_path / rel)
    monkeypatch.setattr(manifest, "MANIFEST", tmp_path / "data" / "MANIFEST.json")
    (tmp_path / "fake_builders_cv.py").write_text(textwrap.dedent(FAKE_BUILDERS))
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib
    module = importlib.import_module("fake_builders_cv")
    module.CALLS.clear()
    monkeypatch.setattr(build, "BUILDERS", (
        ("alpha", "fake_builders_cv:build_alpha"),
        ("missing", "fake_builders_cv:build_missing"),
        ("ghost", "no_such_module_cv.sub:build"),
        ("beta", "fake_builders_cv:build_beta"),
    ))
    return module


def test_order_missing_source_keeps_going_and_second_run_is_up_to_date(fake):
    lines = []
    results = build.build_all(echo=lines.append)
    assert [r.name for r in results] == ["alpha", "missing", "ghost", "beta"]
    assert [r.status for r in results] == ["built", "missing source", "not available", "built"]
    assert fake.CALLS == ["alpha", "missing", "beta"]
    assert "fake-package" in results[1].message
    assert len(lines) == 4 and lines[0].startswith("alpha") and "rows=1" in lines[0]
    again = build.build_all(echo=None)
    assert [r.status for r in again] == ["up to date", "missing source", "not available", "up to date"]
    forced = build.build_all(only=["beta"], force=True, echo=None)
    assert [(r.name, r.status) for r in forced] == [("beta", "built")]


def test_unknown_name_is_refused(fake):
    with pytest.raises(ValueError, match="unknown data set.*'gamma'.*alpha"):
        build.build_all(only=["gamma"])


def test_resolve_builder_distinguishes_absent_module_from_broken_one(tmp_path, monkeypatch):
    assert build.resolve_builder("clickvision.data.no_such_builder_xyz:build") is None
    assert build.resolve_builder("no_such_package_xyz.mod:build") is None
    (tmp_path / "broken_builder_cv.py").write_text("import no_such_dependency_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError, match="no_such_dependency_xyz"):
        build.resolve_builder("broken_builder_cv:build")


def test_cli_exits_non_zero_on_missing_source_and_keeps_the_rest(fake, capsys):
    assert main(["build"]) == 1
    captured = capsys.readouterr()
    assert "MISSING SOURCES" in captured.err and "apt-get install --no-install-recommends fake-package" in captured.err
    assert "alpha" in captured.out and "done in" in captured.out
    assert manifest.is_built("alpha") and manifest.is_built("beta")
    assert main(["build", "--only", "alpha", "--only", "beta"]) == 0
    assert main(["status"]) == 0
    out = capsys.readouterr().out
    assert "alpha" in out and "ok" in out and "missing        not built" in out
    with pytest.raises(SystemExit):
        main(["build", "--only", "gamma"])


def test_status_reports_stale_artifacts(fake, capsys):
    build.build_all(only=["alpha"], echo=None)
    (paths.PROCESSED_DIR / "alpha.csv").write_text("changed\n")
    main(["status"])
    assert "alpha          STALE" in capsys.readouterr().out


def test_image_index_detects_a_lost_image(tmp_path):
    (tmp_path / "img").mkdir()
    for name in ("a.png", "b.png"):
        (tmp_path / "img" / name).write_bytes(name.encode())
    index = build.write_image_index(tmp_path, ["img/b.png", "img/a.png"])
    lines = index.read_text().splitlines()
    assert [line.split("  ")[1] for line in lines] == ["img/a.png", "img/b.png"]
    assert lines[0].split("  ")[0] == manifest.sha256_file(tmp_path / "img" / "a.png")
    assert build.images_present(tmp_path)
    (tmp_path / "img" / "a.png").unlink()
    assert not build.images_present(tmp_path)


def test_staged_dir_replaces_whole_or_not_at_all(tmp_path):
    final = tmp_path / "img"
    final.mkdir()
    (final / "old.png").write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with build.staged_dir(final) as stage:
            (stage / "new.png").write_bytes(b"new")
            raise RuntimeError("crash mid-build")
    assert sorted(p.name for p in final.iterdir()) == ["old.png"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["img"]   # no staging folder left
    with build.staged_dir(final) as stage:
        (stage / "sub").mkdir()
        (stage / "sub" / "new.png").write_bytes(b"new")
    assert [p.relative_to(final).as_posix() for p in final.rglob("*.png")] == ["sub/new.png"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["img"]


def test_summary_line_names_counts_or_sub_entries():
    one = build.BuildResult("emoji", "built", 2.04, entry={"counts": {"images": 12, "per_class": {"a": 1}}})
    assert one.summary() == "emoji          built               2.0 s  images=12"
    entries = {"clicks-a": {"artifacts": {}}, "clicks-b": {"artifacts": {}}}
    many = build.BuildResult("click", "up to date", 0.5, entry=entries)
    assert many.summary().endswith("records: clicks-a, clicks-b")
    missing = build.BuildResult("openclipart", "missing source", 0.0, message="install it with `apt-get ...`")
    assert missing.summary().splitlines()[1] == "    install it with `apt-get ...`"
