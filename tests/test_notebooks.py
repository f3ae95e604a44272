"""Every notebook: a well-formed parameters cell, and a papermill run at profile ``smoke``.

nbval (``pytest --nbval notebooks``) separately re-executes the committed ``default``
outputs; this file checks that each notebook also runs at the parameters a CI or a user's
sweep would inject.
"""
import ast
import json
import subprocess
import sys

import pytest

from clickvision import workbook
from clickvision.features import FEATURE_SETS_ENV, NO_FEATURES_ENV
from clickvision.workbook import FEATURE_FREE, feature_reads, section
from clickvision.nbrun import run_notebook

NOTEBOOKS = workbook.notebooks()
IDS = [nb.stem for nb in NOTEBOOKS]


def _cells(nb):
    return json.loads(nb.read_text())["cells"]


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=IDS)
def test_parameters_cell(nb):
    code = [c for c in _cells(nb) if c["cell_type"] == "code"]
    tagged = [i for i, c in enumerate(code) if "parameters" in c["metadata"].get("tags", [])]
    assert len(tagged) == 1, f"{nb.name}: exactly one cell must be tagged 'parameters'"
    src = "".join(code[tagged[0]]["source"])
    tree = ast.parse(src)
    names = []
    for node in tree.body:  # plain (seed = 0) or annotated (seed: int = 0) assignments
        assert isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None, (
            f"{nb.name}: parameters cell holds only assignments")
        ast.literal_eval(node.value)  # literals only
        names.append((node.targets[0] if isinstance(node, ast.Assign) else node.target).id)
    assert "profile" in names
    for line in src.splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            assert "#" in line, f"{nb.name}: parameter line without a comment: {line!r}"
            assert "=" not in line.split("#", 1)[1], (  # papermill cannot parse it (warns, drops the help)
                f"{nb.name}: '=' in a parameter's comment: {line!r}")
    rest = [c for c in code[tagged[0] + 1:] if "injected-parameters" not in c["metadata"].get("tags", [])]
    after = "".join(rest[0]["source"]) if rest else ""
    before = "".join(code[tagged[0] - 1]["source"]) if tagged[0] else ""
    assert "params.watch()" in before and "params.check(" in after, (
        f"{nb.name}: call cv.params.watch() before and cv.params.check(globals()) after the parameters cell")
    # committed outputs carry execution counts (nbval needs them)
    for c in code:
        if c.get("outputs"):
            assert c.get("execution_count") is not None, f"{nb.name}: outputs without execution count"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=IDS)
def test_papermill_sees_parameters(nb):
    assert "profile" in workbook.notebook_parameters(nb)


def test_papermill_help_lists_parameters():
    nb = NOTEBOOKS[0]  # the CLI itself, once: the per-notebook view above is the same parser
    out = subprocess.run([sys.executable, "-m", "papermill", "--help-notebook", str(nb)],
                         capture_output=True, text=True, check=True).stdout
    assert "profile" in out


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=IDS)
def test_smoke_run(nb, tmp_path):
    env = {"CLICKVISION_RESULTS_DIR": str(tmp_path / "results"),
           "CLICKVISION_FIGURES_DIR": str(tmp_path / "figures")}
    if section(nb) in FEATURE_FREE:  # run as `make workbook` runs it, beside the feature build: reading features raises
        env[NO_FEATURES_ENV] = "1"
    else:  # as `make workbook` runs it: reading a part of the feature cache it does not wait for raises
        env[FEATURE_SETS_ENV] = ",".join(feature_reads(nb))
    info = run_notebook(nb, tmp_path / nb.name, {"profile": "smoke"}, env=env, timeout_s=600)
    assert info.ok, f"{nb.name} failed at profile smoke:\n{info.log_tail}"
    assert info.cpu_s > 0 and info.peak_mb > 0  # the timing report's resource figures
