"""Pure plotting functions behind the notebooks' interactive cells.

Each function draws one static figure from plain arguments, so a notebook calls it once
headlessly (papermill and nbval see it) and wraps it in ``ipywidgets.interactive`` in a
guarded cell for JupyterLab (``interactive = True``).
"""
from __future__ import annotations

import numpy as np


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
