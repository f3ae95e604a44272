"""The notebooks' interactive explorers: when to show them, and pure plotting functions.

Each plotting function draws one static figure from plain arguments, so a notebook calls it
once for every reader (papermill and nbval see that figure), and offers it behind
``ipywidgets`` controls with :func:`interact` in a cell guarded by :func:`enabled`.

Whether the explorer appears is decided from the execution context, not by a parameter the
reader must flip: the notebooks' ``interactive`` parameter defaults to ``"auto"``, which
means *on* in a kernel with a person's front end (JupyterLab, Notebook, VS Code) and *off*
when nobody is watching (papermill, nbval/pytest, ``jupyter nbconvert --execute``, CI,
``CLICKVISION_HEADLESS`` set to anything but ``0``). ``interactive=False`` switches the
explorer off anywhere; ``interactive=True`` switches it on, except under a headless
executor, where a widget would wait for a browser that never connects (nbclient runs the
cell until its execution timeout, then the run still exits 0): there :func:`enabled` prints
why it skips the explorer and returns False.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

AUTO = "auto"
#: Words in an ancestor's command line that mark an executor without a person's front end.
HEADLESS_EXECUTORS = ("papermill", "nbval", "pytest", "nbconvert", "nbclient")


def headless_context(ancestors: Iterable[str] | None = None, environ: dict[str, str] | None = None,
                     shell: Any = ...) -> str | None:
    """Why nobody can see a widget here (a short phrase), or None when a front end may.

    ``ancestors`` (command lines of the parent processes), ``environ`` and ``shell`` (the
    IPython shell, None outside IPython) default to this process's; they are arguments so
    the decision can be tested without a browser.
    """
    env = os.environ if environ is None else environ
    flag = env.get("CLICKVISION_HEADLESS")
    if flag is not None:
        return None if flag == "0" else f"CLICKVISION_HEADLESS={flag}"
    if env.get("CI"):
        return "CI (the CI environment variable is set)"
    if ancestors is None:
        from .runtime import _ancestor_cmdlines

        ancestors = _ancestor_cmdlines()
    for cmd in ancestors:
        for word in HEADLESS_EXECUTORS:
            if word in cmd:
                return word
    if shell is ...:
        try:
            from IPython import get_ipython
        except ImportError:  # pragma: no cover
            shell = None
        else:
            shell = get_ipython()
    if shell is None:
        return "plain Python (no IPython kernel)"
    if type(shell).__name__ != "ZMQInteractiveShell":
        return f"{type(shell).__name__} (a terminal IPython, not a notebook kernel)"
    return None


def _ipywidgets_missing() -> bool:
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        return True
    return False


def enabled(interactive: bool | str = AUTO, **context: Any) -> bool:
    """Whether a notebook shows its interactive explorer (see the module docstring).

    ``interactive``: the notebook parameter, ``"auto"`` (decide from the execution
    context), True or False. ``context``: passed to :func:`headless_context` (tests).
    A forced True under a headless executor prints why it is ignored and returns False.
    """
    if isinstance(interactive, str) and interactive == AUTO:
        return headless_context(**context) is None and not _ipywidgets_missing()
    if interactive is False:
        return False
    if interactive is not True:
        raise ValueError(f"parameter 'interactive' must be 'auto', True or False, got {interactive!r}")
    why = headless_context(**context)
    if why is not None:
        print(f"interactive=True ignored: this run has no front end to draw widgets in ({why}); a widget "
              "here would wait for a browser until the execution timeout. Open the notebook in JupyterLab "
              "for the explorer; the static figure above shows the default view.", file=sys.stderr)
        return False
    if _ipywidgets_missing():
        print("interactive=True ignored: ipywidgets is not installed in this kernel "
              "(pip install ipywidgets).", file=sys.stderr)
        return False
    return True


def interact(plot: Callable[..., Any], **controls: Any):
    """``ipywidgets.interact`` over ``plot``, drawing each view's figure once.

    ``plot(**values)`` draws a figure and returns it (or draws with pyplot and returns None).
    A bare ``interact`` would show a returned figure twice: once as the callback's result and
    once more when the inline backend flushes the open pyplot figures. Here the returned
    figure is displayed and closed, then any other open figure is shown once.
    """
    import functools

    import ipywidgets
    import matplotlib.pyplot as plt
    from IPython.display import display

    @functools.wraps(plot)  # ipywidgets reads the controls' names and defaults from plot's signature
    def draw(**values: Any) -> None:
        fig = plot(**values)
        if fig is not None and hasattr(fig, "savefig"):
            display(fig)
            plt.close(fig)
        elif fig is not None:
            display(fig)
        plt.show()

    return ipywidgets.interact(draw, **controls)


def show_prediction(images: np.ndarray, y_true: np.ndarray, proba: np.ndarray, index: int = 0,
                    class_names: list[str] | None = None):
    """One image with its true label and the model's class probabilities."""
    import matplotlib.pyplot as plt

    if not 0 <= index < len(images):
        raise IndexError(f"index must be in [0, {len(images) - 1}], got {index}")
    names = class_names or [str(i) for i in range(proba.shape[1])]
    fig, (a0, a1) = plt.subplots(1, 2, figsize=(7, 2.8), gridspec_kw={"width_ratios": [1, 2]})
    a0.imshow(images[index], cmap="gray_r")
    a0.set_axis_off()
    pred = int(np.argmax(proba[index]))
    a0.set_title(f"true {names[y_true[index]]}, predicted {names[pred]}")
    a1.bar(range(len(names)), proba[index], color=["C2" if i == y_true[index] else "C0" for i in range(len(names))])
    a1.set_xticks(range(len(names)), names)
    a1.set_ylim(0, 1)
    a1.set_ylabel("probability")
    fig.tight_layout()
    return fig
