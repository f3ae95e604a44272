"""environment.yml must list exactly pyproject's dependencies (core + dev extras)."""
import re
import tomllib

import yaml

from clickvision import paths


def _name(req: str) -> str:
    return re.split(r"[<>=!~\[ ;]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_environment_yml_matches_pyproject():
    py = tomllib.loads((paths.PROJ_ROOT / "pyproject.toml").read_text())["project"]
    want = set(py["dependencies"]) | set(py["optional-dependencies"]["dev"])
    env = yaml.safe_load((paths.PROJ_ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    have = {r for r in pip if not r.startswith("-e")}
    assert {_name(r): r for r in have} == {_name(r): r for r in want}, (
        "environment.yml and pyproject.toml disagree; update both")
    assert "-e ." in pip
    assert any(str(d).startswith("python") for d in env["dependencies"] if isinstance(d, str))


def test_ci_runs_the_readme_test_command():
    readme = (paths.PROJ_ROOT / "README.md").read_text()
    ci = (paths.PROJ_ROOT / ".ci" / "run").read_text()
    assert "make test" in readme and "make test" in ci
