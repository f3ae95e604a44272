"""Build every embedded data set in order, and the raster/table helpers the builders share.

``build_all`` runs, in order: emoji, Open Clip Art, then the builders other modules provide
when they are importable (MovieLens, Fashion-MNIST, WordNet, and the *simulated* click logs
and interactions). Each builder is ``build(force: bool = False) -> dict`` (its manifest
entry) and skips finished work itself (``manifest.is_built``), so a second run does nothing.
A missing source raises :class:`~clickvision.data.base.MissingSourceError` whose message is
the exact command to get it; ``build_all`` keeps going with the other sets, keeps
everything already built, and reports the missing ones.
"""
from __future__ import annotations

import contextlib
import csv
import importlib
import importlib.util
import io
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ..io import atomic_path, atomic_write_text
from . import manifest
from .base import MissingSourceError

# (data set name, "module:function"), in build order: later sets may read earlier ones.
BUILDERS: tuple[tuple[str, str], ...] = (
    ("emoji", "clickvision.data.emoji:build"),
    ("openclipart", "clickvision.data.openclipart:build"),
    ("movielens", "clickvision.data.movielens:build"),
    ("fashion_mnist", "clickvision.data.fashion_mnist:build"),
    ("wordnet", "clickvision.data.wordnet:build"),
    ("click", "clickvision.click.build:build"),
)

INDEX_NAME = "images.sha256"


# ----------------------------------------------------------------------------- rasters
def flatten_on_white(im):
    """A PIL image as RGB with any transparency composited over white."""
    from PIL import Image

    if im.mode in ("P", "PA", "LA", "RGBA", "La") or "transparency" in im.info:
        im = im.convert("RGBA")
        bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
        return Image.alpha_composite(bg, im).convert("RGB")
    return im.convert("RGB")


def save_png(im, path: Path) -> Path:
    """Save a PIL image as PNG (no timestamp chunks: same pixels, same bytes).

    A plain write: builders write images into a :func:`staged_dir`, which makes the whole
    folder appear at once (a rename per file costs ~1 ms on this file system).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path, format="PNG", compress_level=6)
    return path


@contextlib.contextmanager
def staged_dir(final: Path) -> Iterator[Path]:
    """Yield an empty folder beside ``final``; when the block succeeds it replaces ``final``.

    Thousands of files then appear together (two renames) and a crash leaves only a hidden
    staging folder, removed by the next build; ``final`` is never half-written.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    for stale in final.parent.glob(f".{final.name}.staging-*"):
        shutil.rmtree(stale, ignore_errors=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{final.name}.staging-", dir=final.parent))
    os.chmod(stage, 0o755)
    try:
        yield stage
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    old = final.parent / f".{final.name}.old-{os.getpid()}"
    if final.exists():
        os.replace(final, old)
    os.replace(stage, final)
    shutil.rmtree(old, ignore_errors=True)


def render_svg(svg: bytes | str | Path, width: int, height: int):
    """Rasterise an SVG (bytes or a file path) at ``width`` x ``height`` on white, as RGB."""
    import cairosvg
    from PIL import Image

    kwargs: dict[str, Any] = {"output_width": int(width), "output_height": int(height), "background_color": "white"}
    if isinstance(svg, (bytes, bytearray)):
        png = cairosvg.svg2png(bytestring=bytes(svg), **kwargs)
    else:
        png = cairosvg.svg2png(url=str(svg), **kwargs)
    with Image.open(io.BytesIO(png)) as im:
        return flatten_on_white(im)


def default_workers() -> int:
    """Worker processes for image work: every core, at most 8."""
    return max(1, min(8, os.cpu_count() or 1))


def parallel_map(fn: Callable, jobs: Sequence, workers: int | None = None, chunksize: int = 32) -> list:
    """``[fn(j) for j in jobs]`` over processes (order kept); in-process for few jobs."""
    workers = default_workers() if workers is None else int(workers)
    if workers <= 1 or len(jobs) < 2 * chunksize:
        return [fn(j) for j in jobs]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(fn, jobs, chunksize=chunksize))


# ----------------------------------------------------------------------------- tables
def write_table(df: pd.DataFrame, path: Path) -> Path:
    """Write a CSV atomically (UTF-8, no index, every field that needs it quoted)."""
    with atomic_path(path, suffix=".csv") as tmp:
        df.to_csv(tmp, index=False, quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
    return Path(path)


def read_table(path: Path, what: str) -> pd.DataFrame:
    """Read a processed CSV; a missing one raises MissingSourceError naming the build command."""
    path = Path(path)
    if not path.exists():
        raise MissingSourceError(
            f"{what} is not built ({path} missing): run `python -m clickvision.data build --only {what}`")
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def write_image_index(root: Path, rel_paths: Iterable[str]) -> Path:
    """Write ``root/images.sha256`` ("<sha256>  <relative path>" per image, sorted).

    The manifest records this one file, so ``is_built`` checks thousands of images by
    hashing one small index; :func:`images_present` checks the files exist.
    """
    lines = [f"{manifest.sha256_file(root / rel)}  {rel}" for rel in sorted(rel_paths)]
    return atomic_write_text(root / INDEX_NAME, "\n".join(lines) + "\n")


def images_present(root: Path) -> bool:
    """True when ``root/images.sha256`` exists and every image it lists exists."""
    index = Path(root) / INDEX_NAME
    if not index.exists():
        return False
    for line in index.read_text().splitlines():
        if line and not (Path(root) / line.split("  ", 1)[1]).is_file():
            return False
    return True


def up_to_date(name: str, params: dict[str, Any], root: Path) -> dict[str, Any] | None:
    """The manifest entry when ``name`` is built with ``params`` and its images exist, else None."""
    if manifest.is_built(name, params) and images_present(root):
        return manifest.load_manifest()[name]
    return None


# ----------------------------------------------------------------------------- orchestration
@dataclass
class BuildResult:
    """What happened to one data set in :func:`build_all`."""

    name: str
    status: str  # "built", "up to date", "missing source", "not available"
    seconds: float = 0.0
    message: str = ""
    entry: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> str:
        counts = self.entry.get("counts", {})
        shown = ", ".join(f"{k}={v}" for k, v in counts.items() if isinstance(v, (int, float)))[:100]
        if not counts and self.entry and all(isinstance(v, dict) and "artifacts" in v for v in self.entry.values()):
            shown = "records: " + ", ".join(self.entry)  # a builder of several manifest entries
        text = f"{self.name:<14} {self.status:<15} {self.seconds:7.1f} s"
        if shown:
            text += f"  {shown}"
        if self.message:
            text += f"\n    {self.message}"
        return text


def _manifest_stamp() -> tuple[int, int, int] | None:
    """(inode, size, mtime) of the manifest: changes whenever a builder records a build."""
    try:
        st = manifest.MANIFEST.stat()
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def resolve_builder(target: str) -> Callable[..., dict] | None:
    """Import ``"module:function"``; None when the module does not exist (not written yet).

    An import error *inside* an existing module is a bug and propagates.
    """
    module_name, func_name = target.split(":")
    try:
        if importlib.util.find_spec(module_name) is None:
            return None
    except ModuleNotFoundError:  # a parent package is missing
        return None
    return getattr(importlib.import_module(module_name), func_name)


def build_all(only: Iterable[str] | None = None, force: bool = False,
              echo: Callable[[str], None] | None = print) -> list[BuildResult]:
    """Run the builders in order (``only``: a subset of names); one summary line each.

    Returns one :class:`BuildResult` per data set. Missing sources do not stop the other
    builders; callers check ``status == "missing source"`` (the CLI exits non-zero).
    """
    names = [n for n, _ in BUILDERS]
    wanted = names if only is None else list(only)
    unknown = [n for n in wanted if n not in names]
    if unknown:
        raise ValueError(f"unknown data set(s) {unknown}; choose from {names}")
    results = []
    for name, target in BUILDERS:
        if name not in wanted:
            continue
        start = time.perf_counter()
        builder = resolve_builder(target)
        if builder is None:
            res = BuildResult(name, "not available", message=f"{target.split(':')[0]} is not part of this checkout")
        else:
            before = _manifest_stamp()
            try:
                entry = builder(force=force)
            except MissingSourceError as exc:
                res = BuildResult(name, "missing source", message=str(exc))
            else:  # a builder that skipped its work recorded nothing: the manifest is untouched
                status = "up to date" if (not force and before is not None and _manifest_stamp() == before) else "built"
                res = BuildResult(name, status, entry=dict(entry or {}))
        res.seconds = time.perf_counter() - start
        results.append(res)
        if echo is not None:
            echo(res.summary())
    return results
