"""Build every embedded data set in order, and the raster/table helpers the builders share.

``build_all`` runs, in order: emoji, the Iconify emoji vendors, Open Clip Art, then the builders other modules provide
when they are importable (MovieLens, Fashion-MNIST, WordNet, and the *simulated* click logs
and interactions). Each builder is ``build(force: bool = False) -> dict`` (its manifest
entry) and skips finished work itself (``manifest.is_built``), so a second run does nothing.
Image sets also list every image with its sha256 and byte size (:func:`write_image_index`):
each build checks the sizes cheaply, ``build --verify`` re-hashes the images, and a damaged
image is rebuilt alone where the builder can (:func:`up_to_date`'s ``repair``).
A missing source raises :class:`~clickvision.data.base.MissingSourceError` whose message is
the exact command to get it; ``build_all`` keeps going with the other sets, keeps
everything already built, and reports the missing ones.
"""
from __future__ import annotations

import contextlib
import contextvars
import csv
import hashlib
import importlib
import importlib.util
import io
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from .. import paths
from ..io import atomic_path, atomic_write_text
from . import manifest
from .base import DataError, MissingSourceError

# (data set name, "module:function"), in build order: later sets may read earlier ones.
BUILDERS: tuple[tuple[str, str], ...] = (
    ("emoji", "clickvision.data.emoji:build"),
    ("emoji_vendors", "clickvision.data.emoji:build_vendors"),
    ("openclipart", "clickvision.data.openclipart:build"),
    ("movielens", "clickvision.data.movielens:build"),
    ("fashion_mnist", "clickvision.data.fashion_mnist:build"),
    ("wordnet", "clickvision.data.wordnet:build"),
    ("click", "clickvision.click.build:build"),
)

INDEX_NAME = "images.sha256"
SIZES_NAME = "images.size"
_SIZES_HEADER = "# byte sizes of the images of images.sha256 with sha256"
_VERIFY: contextvars.ContextVar[bool] = contextvars.ContextVar("clickvision_verify_images", default=False)


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


def _digest_and_size(path: Path) -> tuple[str, int]:
    """(sha256, byte size) of one file, read once."""
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
            size += len(block)
    return h.hexdigest(), size


def _write_index(root: Path, records: dict[str, tuple[str, int]]) -> Path:
    """Write ``images.sha256`` and its ``images.size`` sidecar from ``{rel: (sha256, bytes)}``."""
    root = Path(root)
    rels = sorted(records)
    index = atomic_write_text(root / INDEX_NAME, "".join(f"{records[r][0]}  {r}\n" for r in rels))
    header = f"{_SIZES_HEADER} {manifest.sha256_file(index)}\n"
    atomic_write_text(root / SIZES_NAME, header + "".join(f"{records[r][1]}  {r}\n" for r in rels))
    return index


def write_image_index(root: Path, rel_paths: Iterable[str]) -> Path:
    """Write ``root/images.sha256`` ("<sha256>  <relative path>" per image, sorted).

    The manifest records this one file, so ``is_built`` checks thousands of images by
    hashing one small index. The index keeps ``sha256sum -c`` format (run it in ``root``);
    each image's byte size goes to the sidecar ``root/images.size`` ("<bytes>  <path>",
    headed by the sha256 of the index it belongs to), so :func:`damaged_images` can check
    every image cheaply (one ``stat`` each) on every build and ``status``, and re-hash them
    against the index on request. An index without a sidecar (built before sizes were
    recorded), or with a sidecar of another index, still works: sizes are then not checked.
    Returns the index path.
    """
    root = Path(root)
    return _write_index(root, {rel: _digest_and_size(root / rel) for rel in rel_paths})


def read_image_index(root: Path) -> dict[str, tuple[str, int | None]]:
    """``{relative path: (sha256, byte size or None)}`` from ``root/images.sha256`` (+ sizes).

    A missing index raises FileNotFoundError; a malformed line raises DataError naming the
    file and line. Sizes come from the ``images.size`` sidecar when it belongs to this very
    index (its header names the index's sha256), else they are None.
    """
    root = Path(root)
    index = root / INDEX_NAME
    text = index.read_text(encoding="utf-8")
    records: dict[str, tuple[str, int | None]] = {}
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line or line.startswith("#"):
            continue
        digest, sep, rel = line.partition("  ")
        if not sep or not rel or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise DataError(f"{index}:{lineno}: expected '<sha256>  <relative path>', got {line[:80]!r}")
        records[rel] = (digest, None)
    sizes = _read_sizes(root, hashlib.sha256(text.encode("utf-8")).hexdigest())
    for rel, size in sizes.items():
        if rel in records:
            records[rel] = (records[rel][0], size)
    return records


def _read_sizes(root: Path, index_digest: str) -> dict[str, int]:
    """The sidecar's sizes when it belongs to the index with ``index_digest``, else {}."""
    try:
        lines = (Path(root) / SIZES_NAME).read_text(encoding="utf-8").splitlines()
    except (FileNotFoundError, UnicodeDecodeError):
        return {}
    if not lines or lines[0] != f"{_SIZES_HEADER} {index_digest}":
        return {}  # stale (another build's) or foreign: ignore, the hashes still hold
    sizes: dict[str, int] = {}
    for line in lines[1:]:
        size, sep, rel = line.partition("  ")
        if not sep or not size.isdigit():
            return {}
        sizes[rel] = int(size)
    return sizes


def damaged_images(root: Path, verify: bool = False,
                   only: Iterable[str] | None = None) -> list[tuple[str, str]]:
    """``[(relative path, what is wrong)]`` for the images of ``root/images.sha256``.

    Always cheap: every image must be a file and, when the index has recorded sizes, have
    its recorded byte size (an empty file is damaged in any case). ``verify=True`` also
    re-hashes every image against its recorded sha256 (reads every byte). ``only`` limits
    the check to those relative paths. A missing or malformed index is reported as
    ``[("images.sha256", "missing: ...")]`` (or ``"unreadable: ..."``).
    """
    root = Path(root)
    try:
        records = read_image_index(root)
    except FileNotFoundError:
        return [(INDEX_NAME, "missing: the image index (rebuild)")]
    except (DataError, OSError, UnicodeDecodeError) as exc:
        return [(INDEX_NAME, f"unreadable: {exc}")]
    wanted = records if only is None else {r: records.get(r) for r in only}
    out = []
    for rel, rec in wanted.items():
        if rec is None:
            out.append((rel, "not in the image index"))
            continue
        digest, size = rec
        path = root / rel
        try:
            st = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            out.append((rel, "missing"))
            continue
        if not stat.S_ISREG(st.st_mode):
            out.append((rel, "not a regular file"))
        elif size is not None and st.st_size != size:
            out.append((rel, f"{st.st_size} bytes, the index records {size}"))
        elif st.st_size == 0:
            out.append((rel, "empty file"))
        elif verify and manifest.sha256_file(path) != digest:
            out.append((rel, "sha256 differs from the index (swapped or corrupted)"))
    return sorted(out)


def images_present(root: Path) -> bool:
    """True when ``root/images.sha256`` exists and every image it lists exists with its
    recorded size (the cheap check of :func:`damaged_images`)."""
    return not damaged_images(root)


@contextlib.contextmanager
def verifying(on: bool = True) -> Iterator[None]:
    """Within the block, :func:`up_to_date` re-hashes every image (``build --verify``)."""
    token = _VERIFY.set(bool(on))
    try:
        yield
    finally:
        _VERIFY.reset(token)


def up_to_date(name: str, params: dict[str, Any], root: Path,
               repair: Callable[[list[str]], bool] | None = None) -> dict[str, Any] | None:
    """The manifest entry when ``name`` is built with ``params`` and its images are intact, else None.

    Images are checked cheaply (existence and byte size), and re-hashed inside
    :func:`verifying` (``build --verify``). When only images are damaged and ``repair`` is
    given, ``repair(relative paths)`` rebuilds just those (returning False when it cannot,
    and a full build follows); the repaired files are re-hashed, the index is updated if
    their bytes changed (then the manifest is re-recorded) and the entry is returned with
    ``"repaired"``: the project-relative paths rebuilt (not stored in the manifest).
    """
    if not manifest.is_built(name, params, images="none"):
        return None
    entry = manifest.load_manifest()[name]
    damaged = damaged_images(root, verify=_VERIFY.get())
    if not damaged:
        return entry
    rels = [rel for rel, _ in damaged]
    if repair is None or INDEX_NAME in rels or not repair(rels):
        return None
    records = dict(read_image_index(root))
    fresh = {rel: _digest_and_size(Path(root) / rel) for rel in rels}
    changed = any(records[rel][0] != fresh[rel][0] for rel in rels)  # another renderer version?
    if changed or any(size is None for _, size in records.values()):
        full = {rel: (d, s if s is not None else (Path(root) / rel).stat().st_size) for rel, (d, s) in records.items()}
        full.update(fresh)
        _write_index(root, full)  # same index text unless ``changed``; the sidecar gets every size
    if changed:  # the index is an artifact: record its new digest
        artifacts = [paths.PROJ_ROOT / rel for rel in entry.get("artifacts", {})]
        entry = manifest.record_build(name, {k: v for k, v in entry.items() if k != "artifacts"}, artifacts)
    if damaged_images(root, only=rels):
        return None
    return {**entry, "repaired": [manifest._rel(Path(root) / rel) for rel in rels]}


# ----------------------------------------------------------------------------- orchestration
@dataclass
class BuildResult:
    """What happened to one data set in :func:`build_all`."""

    name: str
    status: str  # "built", "up to date", "repaired", "missing source", "not available"
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
              echo: Callable[[str], None] | None = print, verify: bool = False) -> list[BuildResult]:
    """Run the builders in order (``only``: a subset of names); one summary line each.

    Returns one :class:`BuildResult` per data set. Missing sources do not stop the other
    builders; callers check ``status == "missing source"`` (the CLI exits non-zero).
    Built images are checked cheaply (existence, byte size) and, with ``verify``, re-hashed
    against their index; a builder that rebuilt only its damaged images reports
    ``"repaired"`` and names them.
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
                with verifying(verify):
                    entry = builder(force=force)
            except MissingSourceError as exc:
                res = BuildResult(name, "missing source", message=str(exc))
            else:  # a builder that skipped its work recorded nothing: the manifest is untouched
                entry = dict(entry or {})
                repaired = entry.pop("repaired", None)
                status = "up to date" if (not force and before is not None and _manifest_stamp() == before) else "built"
                res = BuildResult(name, "repaired" if repaired else status, entry=entry)
                if repaired:
                    shown = ", ".join(repaired[:10]) + (f", ... ({len(repaired)} in all)" if len(repaired) > 10 else "")
                    res.message = f"rebuilt {len(repaired)} damaged image(s): {shown}"
        res.seconds = time.perf_counter() - start
        results.append(res)
        if echo is not None:
            echo(res.summary())
    return results
