"""When the notebooks' interactive explorers appear (decided from the execution context), and
that an explorer draws each view's figure once. No browser is needed: the context is passed in."""
from __future__ import annotations

import pytest
from clickvision import widgets

LAB = ["/usr/bin/python -m ipykernel_launcher -f kernel.json", "/venv/bin/python /venv/bin/jupyter-lab notebooks"]


class ZMQInteractiveShell:  # stands in for the kernel's shell (only its class name is read)
    pass


class TerminalInteractiveShell:
    pass


KERNEL = ZMQInteractiveShell()


@pytest.mark.parametrize("ancestors,environ,shell,why", [
    (LAB, {}, KERNEL, None),
    (LAB, {"CLICKVISION_HEADLESS": "0", "CI": "1"}, KERNEL, None),  # forced on
    (LAB, {"CLICKVISION_HEADLESS": "1"}, KERNEL, "CLICKVISION_HEADLESS=1"),
    (LAB, {"CI": "true"}, KERNEL, "CI"),
    (["python -m ipykernel_launcher", "/venv/bin/python /venv/bin/papermill a.ipynb b.ipynb"], {}, KERNEL, "papermill"),
    (["python -m ipykernel_launcher", "python -m pytest --nbval notebooks/x.ipynb"], {}, KERNEL, "nbval"),
    (["python -m ipykernel_launcher", "python -m pytest tests"], {}, KERNEL, "pytest"),
    (["python -m ipykernel_launcher", "jupyter-nbconvert --execute x.ipynb"], {}, KERNEL, "nbconvert"),
    (["bash"], {}, None, "plain Python"),
    (["bash"], {}, TerminalInteractiveShell(), "TerminalInteractiveShell"),
])
def test_headless_context(ancestors, environ, shell, why):
    got = widgets.headless_context(ancestors=ancestors, environ=environ, shell=shell)
    assert (got is None) if why is None else (why in got)


def test_auto_is_on_in_lab_and_off_headless(capsys):
    assert widgets.enabled("auto", ancestors=LAB, environ={}, shell=KERNEL)
    assert not widgets.enabled("auto", ancestors=["papermill x.ipynb"], environ={}, shell=KERNEL)
    assert not widgets.enabled("auto", ancestors=LAB, environ={"CLICKVISION_HEADLESS": "1"}, shell=KERNEL)
    assert capsys.readouterr().err == ""  # "auto" decides silently


def test_false_is_off_everywhere():
    assert not widgets.enabled(False, ancestors=LAB, environ={}, shell=KERNEL)


def test_forced_on_in_lab():
    assert widgets.enabled(True, ancestors=LAB, environ={}, shell=KERNEL)


def test_forced_on_under_papermill_says_why_instead_of_hanging(capsys):
    assert not widgets.enabled(True, ancestors=["python -m papermill a.ipynb b.ipynb"], environ={}, shell=KERNEL)
    err = capsys.readouterr().err
    assert "interactive=True ignored" in err and "papermill" in err and "JupyterLab" in err


@pytest.mark.parametrize("bad", ["on", 1, None, "Auto"])
def test_bad_value_names_the_parameter(bad):
    with pytest.raises(ValueError, match="parameter 'interactive' must be 'auto', True or False"):
        widgets.enabled(bad, ancestors=LAB, environ={}, shell=KERNEL)


def test_this_test_process_is_headless():
    assert not widgets.enabled("auto")  # pytest is an ancestor (or CI / CLICKVISION_HEADLESS is set)


def test_interact_draws_each_view_once(monkeypatch):
    """The callback's figure is displayed once and closed, so the inline backend does not show
    it a second time (the explorers of 00.01, 00.02, B.01 and B.02 drew every view twice)."""
    import ipywidgets
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from IPython import display as ipd

    shown, calls = [], {}

    def fake_interact(fn, **controls):
        calls["controls"] = controls
        fn(index=1)  # what ipywidgets does once at creation and on every change
        return "widget"

    def plot(index):
        fig, ax = plt.subplots()
        ax.plot([0, index])
        return fig

    monkeypatch.setattr(ipywidgets, "interact", fake_interact)
    monkeypatch.setattr(ipd, "display", lambda obj: shown.append(obj))
    monkeypatch.setattr(plt, "show", lambda: shown.extend(plt.get_fignums()))
    plt.close("all")
    assert widgets.interact(plot, index=ipywidgets.IntSlider(0, 0, 3)) == "widget"
    assert len(shown) == 1 and hasattr(shown[0], "savefig")  # the figure, once
    assert plt.get_fignums() == []  # closed: nothing left for the backend to show again
    assert set(calls["controls"]) == {"index"}


def test_interact_with_real_ipywidgets_keeps_the_signature(monkeypatch):
    """With ipywidgets itself (no front end: the widgets are built, nothing is rendered), the
    controls come from the plotting function's signature and its defaults."""
    import ipywidgets
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from IPython import display as ipd

    seen = []
    monkeypatch.setattr(ipd, "display", lambda *objs, **kw: None)

    def plot(n=2, label="a"):
        seen.append((n, label))
        fig, ax = plt.subplots()
        ax.set_title(label * n)
        return fig

    w = widgets.interact(plot, n=ipywidgets.IntSlider(2, 1, 5))
    assert w is not None
    assert seen and seen[0] == (2, "a")  # drawn once at creation with the defaults
    assert plt.get_fignums() == []


def test_explorer_in_a_real_kernel_draws_one_figure(tmp_path, monkeypatch):
    """A kernel run by nbclient with the explorers forced on (``CLICKVISION_HEADLESS=0``): a bare
    ``ipywidgets.interact`` over a function returning a figure leaves a second copy of the figure
    in the cell's outputs (the inline backend's flush); ``cv.widgets.interact`` leaves only the
    one inside the widget."""
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("CLICKVISION_HEADLESS", "0")
    setup = ("%matplotlib inline\nimport numpy as np, ipywidgets as widgets\nimport clickvision as cv\n"
             "rng = np.random.default_rng(0); imgs = rng.random((5, 8, 8)); y = np.arange(5) % 3\n"
             "p = rng.dirichlet(np.ones(3), 5)\nplot = lambda index: cv.widgets.show_prediction(imgs, y, p, index)")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(setup),
                nbformat.v4.new_code_cell("widgets.interact(plot, index=widgets.IntSlider(0, 0, 4))"),
                nbformat.v4.new_code_cell("assert cv.widgets.enabled('auto')\n"
                                          "cv.widgets.interact(plot, index=widgets.IntSlider(0, 0, 4))")]
    NotebookClient(nb, timeout=120, kernel_name="python3", store_widget_state=True,
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    widget_pngs = [sum("image/png" in o.get("data", {}) for o in v["state"].get("outputs", []))
                   for v in state.values() if v.get("model_name") == "OutputModel"]
    assert widget_pngs == [1, 1]  # each explorer's view is drawn in its widget

    def cell_pngs(cell):
        return sum("image/png" in o.get("data", {}) for o in cell.outputs)

    assert cell_pngs(nb.cells[1]) == 1  # the bare interact: a second copy below the widget
    assert cell_pngs(nb.cells[2]) == 0  # cv.widgets.interact: none
