"""Annotated parameters cells (``seed: int = 0  # help``): papermill prints their types, and
the library's parameter tooling reads them as it reads plain assignments."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from clickvision.params import (
    ParameterError,
    annotation_types,
    cell_assignments,
    validate_parameters,
)

ANNOTATED = '''profile: str = "default"  # smoke, default or paper
seed: int = 0  # seed of everything
lr: float = 0.05  # learning rate
dims: list[int] = [16, 64]  # latent sizes
interactive: "Union[bool, str]" = "auto"  # "auto": widgets in JupyterLab only
plain = 3  # a plain assignment still counts
'''


def test_cell_assignments_reads_annotated_and_plain():
    got = cell_assignments(ANNOTATED)
    assert got == {"profile": "str", "seed": "int", "lr": "float", "dims": "list[int]",
                   "interactive": '"Union[bool, str]"', "plain": None}
    assert cell_assignments("x: int\ny = 1") == {"y": None}  # an annotation without a value assigns nothing
    assert cell_assignments("def (:") == {}


@pytest.mark.parametrize("text,types", [
    ("int", (int,)), ("float", (float,)), ("str", (str,)), ("bool", (bool,)),
    ("list[int]", (list, tuple)), ("Optional[int]", (int, type(None))),
    ("Union[bool, str]", (bool, str)), ("bool | str", (bool, str)), ("'bool | str'", (bool, str)),
    ('"Union[bool, str]"', (bool, str)), ("typing.Optional[str]", (str, type(None))),
    ("numpy.ndarray", None), ("Callable[[int], int]", None), ("1 +", None),
])
def test_annotation_types(text, types):
    assert annotation_types(text) == types


DEFAULTS = {"profile": "default", "seed": 0, "lr": 0.05, "dims": [16, 64], "interactive": "auto"}
ANN = {"profile": "str", "seed": "int", "lr": "float", "dims": "list[int]", "interactive": "Union[bool, str]"}


def test_annotation_decides_the_type():
    # the default "auto" is a str, but the annotation also allows a bool
    for value in ("auto", True, False):
        out = validate_parameters(dict(DEFAULTS, interactive=value), DEFAULTS, annotations=ANN)
        assert out["interactive"] is value or out["interactive"] == value
    assert validate_parameters(dict(DEFAULTS, lr=1), DEFAULTS, annotations=ANN)["lr"] == 1


@pytest.mark.parametrize("name,value,msg", [
    ("seed", 0.5, "'seed' must be int .annotation 'int'"),
    ("seed", True, "'seed' must be int"),
    ("lr", "fast", "'lr' must be float"),
    ("dims", 3, "'dims' must be list or tuple"),
    ("interactive", 1, "'interactive' must be bool or str"),
    ("interactive", "yes", "'interactive' must be one of"),
    ("profile", "huge", "'profile' must be one of"),
])
def test_annotated_bad_values_name_the_parameter(name, value, msg):
    with pytest.raises(ParameterError, match=msg):
        validate_parameters(dict(DEFAULTS, **{name: value}), DEFAULTS, annotations=ANN)


def test_default_contradicting_its_annotation_is_an_error():
    with pytest.raises(ParameterError, match="'seed': its default 0.5 does not match its annotation 'int'"):
        validate_parameters({"seed": 0.5}, {"seed": 0.5}, annotations={"seed": "int"})


def test_unknown_annotation_falls_back_to_the_default_type():
    assert validate_parameters({"x": 2}, {"x": 1}, annotations={"x": "numpy.int64"}) == {"x": 2}
    with pytest.raises(ParameterError, match="'x' must be int"):
        validate_parameters({"x": "a"}, {"x": 1}, annotations={"x": "numpy.int64"})


def test_notebook_hook_records_annotations():
    from IPython.testing.globalipapp import get_ipython, start_ipython

    ip = start_ipython() or get_ipython()
    ip.run_cell("import clickvision as cv; cv.params.watch()")
    ip.run_cell(ANNOTATED)
    ip.run_cell("# Parameters\ninteractive = True\nseed = 2\n")  # what papermill injects
    res = ip.run_cell("P = cv.params.check(globals())")
    assert res.error_in_exec is None, res.error_in_exec
    assert ip.user_ns["P"]["interactive"] is True and ip.user_ns["P"]["seed"] == 2
    ip.run_cell("cv.params.watch()")
    ip.run_cell(ANNOTATED)
    ip.run_cell("# Parameters\nseed = 2.5\n")
    res = ip.run_cell("P = cv.params.check(globals())")
    assert isinstance(res.error_in_exec, ParameterError)
    assert "'seed' must be int" in str(res.error_in_exec)


def _notebook(tmp_path: Path, source: str) -> Path:
    import nbformat

    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell("# t"), cell]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / "t.ipynb"
    nbformat.write(nb, path)
    return path


def test_notebook_parameters_reads_annotated_cells(tmp_path):
    from clickvision.nbrun import notebook_parameters

    path = _notebook(tmp_path, ANNOTATED)
    assert notebook_parameters(path) == {"profile": "default", "seed": 0, "lr": 0.05, "dims": [16, 64],
                                         "interactive": "auto", "plain": 3}


def test_papermill_sees_the_annotations(tmp_path):
    import papermill as pm

    spec = pm.inspect_notebook(str(_notebook(tmp_path, ANNOTATED)))
    assert spec["seed"]["inferred_type_name"] == "int"
    assert spec["interactive"]["inferred_type_name"] == "Union[bool, str]"
    assert spec["plain"]["inferred_type_name"] == "None"


def test_is_committed_run_with_an_annotated_notebook(tmp_path, monkeypatch):
    from clickvision import paths, provenance

    folder = tmp_path / "notebooks"
    folder.mkdir()
    _notebook(folder, ANNOTATED).rename(folder / "X.01-Test.ipynb")
    monkeypatch.setattr(paths, "NOTEBOOKS_DIR", folder)
    declared = {"profile": "default", "seed": 0, "lr": 0.05, "dims": [16, 64], "interactive": "auto", "plain": 3}
    assert provenance.is_committed_run("X.01-Test", declared)
    assert not provenance.is_committed_run("X.01-Test", dict(declared, seed=1))
    assert not provenance.is_committed_run("X.01-Test", dict(declared, interactive=True))


def test_every_committed_parameters_cell_is_read_whole():
    """Every line of every notebook's parameters cell that assigns a name is a parameter that
    papermill (and so notebook_parameters) sees: its regex drops a line it cannot parse
    (a '|' in the annotation, a second '=' in the comment) without a word."""
    from clickvision.nbrun import notebook_parameters

    root = Path(__file__).resolve().parents[1] / "notebooks"
    for nb_path in sorted(root.rglob("*.ipynb")):
        if ".ipynb_checkpoints" in nb_path.parts:
            continue
        cells = json.loads(nb_path.read_text())["cells"]
        params = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
        if not params:
            continue
        assigned = cell_assignments("".join(params[0]["source"]))
        assert set(notebook_parameters(nb_path)) == set(assigned), nb_path.name
