"""One way to save figures: ``savefig(fig, "paper/name")``.

Writes ``figures/<paper>/<name>.png`` (and ``.pdf``) with stable metadata so that the same
figure produces the same bytes. ``setup()`` applies ``sns.set_theme()`` and picks the Agg
backend when no front end is attached.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import matplotlib

from . import paths
from .io import atomic_path


def _in_kernel() -> bool:
    return "ipykernel" in sys.modules


if not _in_kernel() and not os.environ.get("DISPLAY"):
    matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import seaborn as sns  # noqa: E402


def setup(context: str = "notebook") -> None:
    """Seaborn theme used by every figure of the workbook."""
    sns.set_theme(context=context, style="whitegrid")
    plt.rcParams.update({"figure.dpi": 100, "savefig.dpi": 120, "savefig.bbox": "tight",
                         "svg.hashsalt": "clickvision"})


def figures_dir() -> Path:
    """Where this run's figures go: :data:`~clickvision.paths.FIGURES_DIR`, except that a run with
    other parameters than the committed one (a smoke run, a sweep point, a JupyterLab run with a
    changed parameter: :func:`clickvision.params.current_run`) writes into
    ``results/runs/figures/<run id>/`` instead of over the committed figures in the project's
    ``figures/``. A folder set by ``CLICKVISION_FIGURES_DIR`` is always used as it is."""
    from . import params, results

    run = params.current_run()
    own = paths.FIGURES_DIR == paths.PROJ_ROOT / "figures" and not os.environ.get("CLICKVISION_FIGURES_DIR")
    if own and run is not None and not run[1]:
        return paths.RUNS_DIR / "figures" / results.run_id(run[0])
    return paths.FIGURES_DIR


def figure_path(name: str, ext: str = "png") -> Path:
    parts = name.strip("/").split("/")
    if len(parts) != 2 or not all(parts):
        raise ValueError(f"figure name must be 'paper/name' (e.g. 'A/fig05-vocabulary'), got {name!r}")
    return figures_dir() / parts[0] / f"{parts[1]}.{ext}"


def savefig(fig, name: str, pdf: bool = True) -> Path:
    """Save ``fig`` as ``figures/<paper>/<name>.png`` (+ ``.pdf``; a run with other parameters than
    the committed one: under ``results/runs/figures/<run id>/``, :func:`figures_dir`); return the PNG path."""
    png = figure_path(name, "png")
    with atomic_path(png, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", metadata={"Software": None})
    if pdf:
        with atomic_path(figure_path(name, "pdf"), suffix=".pdf") as tmp:
            fig.savefig(tmp, format="pdf", metadata={"Creator": None, "Producer": None,
                                                     "CreationDate": None})
    return png


def image_grid(images, titles=None, ncols: int = 8, size: float = 1.1, title: str | None = None):
    """A grid of PIL images (or arrays) with optional short titles; returns the figure."""
    import math

    n = len(images)
    if n == 0:
        raise ValueError("image_grid: no images")
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * size, nrows * (size + 0.25)), squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    for i, img in enumerate(images):
        ax = axes.flat[i]
        ax.imshow(img, cmap="gray_r" if getattr(img, "ndim", 3) == 2 else None)
        if titles is not None:
            ax.set_title(str(titles[i])[:18], fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
