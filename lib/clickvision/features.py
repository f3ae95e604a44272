"""Backbone features of an :class:`~clickvision.data.base.ImageSet`, computed once and cached.

``extract_features(imageset)`` returns one row per ``imageset.items`` row: the pooled vector
(``kind="pooled"``, float32, ``(N, C)``) or the last conv map (``kind="map"``, float16,
``(N, C, h, w)``; paper A's CONV embedding reads it), or the activation entering the last
``n`` blocks (``kind="cut<n>"``, float16, ``(N, C', h', w')``: the input of a trainable trunk,
:mod:`clickvision.models.trunk`, that runs those blocks). The result is cached under
``paths.CACHE_DIR / "features" / <data set> / <subset>__<backbone>__<size>px__<kind>__<key>.npy``
where ``<key>`` hashes everything the numbers depend on:

* the inputs: the ordered item keys and the bytes of every image (sha256 of each file, or of
  the in-memory ``pixels``), so a changed, added, removed or reordered image rebuilds, while
  a rebuilt data set with identical bytes (new mtimes, another clone) still hits;
* the backbone: its name and the sha256 of its weights file (or, for a ``Backbone`` object
  passed in, of its parameters), the preprocessing, the image size and the kind.

A rebuild replaces the older file of the same data set / subset / backbone / size / kind,
so stale conv maps do not pile up. Writes are atomic and serialised by a file lock, so
concurrent sweep workers compute a given entry once.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from . import paths, runtime
from .data.base import DataError, ImageSet
from .io import atomic_path, atomic_write_text, file_lock
from .models.backbone import BACKBONES, Backbone, default_weights_file, load_backbone
from .threads import limited

log = logging.getLogger(__name__)

FEATURE_KINDS = ("pooled", "map")
#: ``"cut<n>"``: the activation entering the backbone's last ``n`` blocks (float16, ``(N, C, h, w)``),
#: the input of a trainable :class:`~clickvision.models.trunk.Trunk` that runs those blocks.
CUT_PREFIX = "cut"


def cut_kind(n_last: int) -> str:
    """The feature kind of the activation entering the last ``n_last`` (>= 1) blocks."""
    if not isinstance(n_last, int) or isinstance(n_last, bool) or n_last < 1:
        raise ValueError(f"n_last must be an int >= 1, got {n_last!r}")
    return f"{CUT_PREFIX}{n_last}"


def check_kind(kind: str) -> int | None:
    """Validate a feature kind; return ``n`` for ``"cut<n>"``, None for pooled / map."""
    if kind in FEATURE_KINDS:
        return None
    m = re.fullmatch(rf"{CUT_PREFIX}([1-9][0-9]*)", str(kind))
    if m is None:
        raise ValueError(f"kind must be one of {FEATURE_KINDS} or 'cut<n>' (n >= 1), got {kind!r}")
    return int(m.group(1))


#: Part of every cache key. 2: the extraction runs on one thread (:data:`EXTRACTION_THREADS`); caches
#: built before on more threads can differ in a partial batch's last digits, so they are rebuilt.
CACHE_VERSION = 2
#: Set to "1" in a process that must not read or compute image features (see extract_kinds).
NO_FEATURES_ENV = "CLICKVISION_NO_FEATURES"
_FILE_SHA_MEMO: dict[tuple[str, int, int], str] = {}


def feature_cache_dir() -> Path:
    """Root of the feature cache (``data/cache/features``)."""
    return paths.CACHE_DIR / "features"


def _file_sha256(path: Path) -> str:
    """sha256 of a file, memoised in-process by (path, size, mtime)."""
    st = path.stat()
    memo_key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if memo_key not in _FILE_SHA_MEMO:
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        _FILE_SHA_MEMO[memo_key] = h.hexdigest()
    return _FILE_SHA_MEMO[memo_key]


def images_fingerprint(imageset: ImageSet) -> str:
    """sha256 over the ordered keys and the image bytes; a missing file raises DataError."""
    h = hashlib.sha256(f"v{CACHE_VERSION}|n={len(imageset)}".encode())
    keys = imageset.items["key"].astype(str).tolist()
    h.update("\0".join(keys).encode())
    if imageset.pixels is not None:
        pix = np.ascontiguousarray(imageset.pixels)
        h.update(f"pixels|{pix.dtype}|{pix.shape}".encode())
        h.update(pix.reshape(-1).view(np.uint8))
        return h.hexdigest()
    for key, p in zip(keys, imageset.items["path"].astype(str)):
        path = Path(p)
        try:
            digest = _file_sha256(path)
        except FileNotFoundError as exc:
            raise DataError(f"missing image file: {path} (item {key!r} of {imageset.name!r})") from exc
        except OSError as exc:
            raise DataError(f"unreadable image file: {path} (item {key!r} of {imageset.name!r}): {exc}") from exc
        h.update(f"{key}\0{digest}\n".encode())
    return h.hexdigest()


def backbone_fingerprint(backbone: str | Backbone, weights_path: str | Path | None = None) -> str:
    """Identity of the weights: sha256 of the weights file for a name, of the parameters for an object."""
    if isinstance(backbone, Backbone):
        return backbone.fingerprint()
    if backbone not in BACKBONES:
        raise ValueError(f"unknown backbone {backbone!r}; choose one of {BACKBONES} or pass a Backbone")
    path = Path(weights_path) if weights_path is not None else default_weights_file(backbone)
    if path is None or not path.is_file():
        # load_backbone raises the clear error (unknown name, missing file, no weights)
        load_backbone(backbone, weights_path=weights_path)
    return hashlib.sha256(f"{backbone}|{_file_sha256(path)}".encode()).hexdigest()


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "unnamed"


def _split_name(name: str) -> tuple[str, str]:
    """``"emoji[train]"`` -> ``("emoji", "train")``; a name without brackets -> ``(name, "all")``."""
    m = re.fullmatch(r"(.*?)\[(.*)\]", name)
    return (m.group(1), m.group(2)) if m else (name, "all")


def feature_cache_path(dataset: str, backbone_name: str, image_size: int, kind: str, key: str,
                       cache_dir: Path | None = None) -> Path:
    """Where one cached feature array lives (see the module docstring for the layout)."""
    base, subset = _split_name(dataset)
    root = Path(cache_dir) if cache_dir is not None else feature_cache_dir()
    return root / _safe(base) / f"{_safe(subset)}__{_safe(backbone_name)}__{image_size}px__{kind}__{key[:16]}.npy"


class _ImageDataset(torch.utils.data.Dataset):
    """Rows of an ImageSet as normalised tensors (``load_image`` names bad files)."""

    def __init__(self, imageset: ImageSet, transform) -> None:
        self.imageset, self.transform = imageset, transform

    def __len__(self) -> int:
        return len(self.imageset)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.transform(self.imageset.load_image(i))


def _forward_kinds(backbone: Backbone, xb: torch.Tensor, kinds: Sequence[str]) -> dict[str, torch.Tensor]:
    """Every requested kind of one batch from ONE pass through the network.

    The cut activations are taken on the way (``run_blocks`` runs exactly what
    ``forward_features`` runs, so each output equals a separate pass bit for bit); the map
    and the pooled vector come from the end of the same pass.
    """
    n_blocks = len(backbone.blocks)
    cuts = sorted({backbone.cut_index(n) for n in (check_kind(k) for k in kinds) if n is not None})
    out: dict[str, torch.Tensor] = {}
    at_cut: dict[int, torch.Tensor] = {}
    x, pos = xb, 0
    for idx in cuts:
        x = backbone.run_blocks(x, pos, idx)
        at_cut[idx], pos = x, idx
    if any(check_kind(k) is None for k in kinds):
        fmap = backbone.run_blocks(x, pos) if cuts else backbone.forward_features(xb)
        if "map" in kinds:
            out["map"] = fmap
        if "pooled" in kinds:
            out["pooled"] = backbone.pool(fmap)
    for k in kinds:
        n = check_kind(k)
        if n is not None:
            out[k] = at_cut[n_blocks - n]
    return out


#: Threads of the CPU extraction. The features are not the same on every thread count: on 2 threads
#: the last, partial batch (8 images) of one Iconify vendor came out up to 1e-5 off its 1-thread value
#: (oneDNN picks its kernels by thread count), which would make the cache, and every number after it,
#: depend on the machine's cores. One thread costs little here: end to end the extraction is bound by
#: PNG decoding (the whole default cache: 290 s on 1 thread, 253 s on 2, alone on 2 cores), and
#: ``make workbook`` builds it beside the notebooks, one worker's share of the cores.
EXTRACTION_THREADS = 1


def compute_kinds(imageset: ImageSet, backbone: Backbone, image_size: int = 128, kinds: Sequence[str] = ("pooled",),
                  batch_size: int = 64, device: torch.device | str | None = None,
                  num_workers: int = 0, channels_last: bool = True) -> dict[str, np.ndarray]:
    """Run ``backbone`` once over every image, no cache: ``{kind: array}`` for every kind asked.

    ``pooled``: float32 ``(N, C)``; ``map`` and ``cut<n>``: float16 ``(N, C, h, w)``. The
    backbone is moved to ``device`` (default: where it is) and, with ``channels_last`` (faster
    on the CPU, see bench/bench_backbone.py), to that memory format; it runs in eval mode
    under ``inference_mode`` and gets its train/eval mode back afterwards. On the CPU it runs on
    :data:`EXTRACTION_THREADS` threads whatever the caller's setting, so the cache is the same on
    every machine (tests/test_features.py).
    """
    kinds = list(dict.fromkeys(kinds))
    if not kinds:
        raise ValueError("kinds must name at least one feature kind")
    for kind in kinds:
        n_cut = check_kind(kind)
        if n_cut is not None:
            backbone.cut_index(n_cut)  # a clear error for a cut beyond the network
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    device = torch.device(device) if device is not None else next(backbone.parameters()).device
    was_training = backbone.training
    backbone.eval().to(device)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    if channels_last:
        backbone.to(memory_format=torch.channels_last)
    loader = torch.utils.data.DataLoader(_ImageDataset(imageset, backbone.transform(image_size)),
                                         batch_size=batch_size, shuffle=False, num_workers=num_workers)
    out: dict[str, np.ndarray] = {}
    start = 0
    batches = iter(loader)
    try:
        with limited(EXTRACTION_THREADS), torch.inference_mode():
            for xb in runtime.progress(batches, total=len(loader), desc=f"{backbone.name} {image_size}px {imageset.name}"):
                xb = xb.to(device).contiguous(memory_format=memory_format)
                with runtime.autocast(device):
                    got = _forward_kinds(backbone, xb, kinds)
                for kind, t in got.items():
                    feats = t.float().cpu().numpy()
                    if kind not in out:
                        dtype = np.float32 if kind == "pooled" else np.float16
                        out[kind] = np.empty((len(imageset), *feats.shape[1:]), dtype=dtype)
                    out[kind][start:start + len(feats)] = feats
                start += len(xb)
    finally:
        backbone.train(was_training)
        # a raised error's traceback keeps the iterator alive; stop its worker now, or the
        # next DataLoader waits for it
        shutdown = getattr(batches, "_shutdown_workers", None)
        if shutdown is not None:
            shutdown()
    if not out:  # an empty image set: the shapes from one dummy pass
        param = next(backbone.parameters())
        with torch.inference_mode():
            got = _forward_kinds(backbone, torch.zeros(1, 3, image_size, image_size, device=param.device), kinds)
        out = {k: np.empty((0, *t.shape[1:]), dtype=np.float32 if k == "pooled" else np.float16)
               for k, t in got.items()}
    return out


def compute_features(imageset: ImageSet, backbone: Backbone, image_size: int = 128, kind: str = "pooled",
                     batch_size: int = 64, device: torch.device | str | None = None,
                     num_workers: int = 0, channels_last: bool = True) -> np.ndarray:
    """One kind of :func:`compute_kinds`: float32 ``(N, C)`` or float16 ``(N, C, h, w)``."""
    return compute_kinds(imageset, backbone, image_size, [kind], batch_size, device, num_workers,
                         channels_last)[kind]


def _read_cached(path: Path, n_rows: int) -> np.ndarray | None:
    if not path.exists():
        return None
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        log.warning("feature cache %s is unreadable (%s); recomputing", path, exc)
        return None
    if len(arr) != n_rows:
        log.warning("feature cache %s has %d rows, expected %d; recomputing", path, len(arr), n_rows)
        return None
    return arr


def extract_features(imageset: ImageSet, backbone: str | Backbone = "efficientnet-lite0", image_size: int = 128,
                     kind: str = "pooled", batch_size: int = 64, device: str = "auto",
                     weights_path: str | Path | None = None, num_workers: int = 0,
                     cache: bool = True, cache_dir: str | Path | None = None) -> np.ndarray:
    """Backbone features of ``imageset``, row-aligned with ``imageset.items``, cached on disk.

    ``backbone``: a name from :data:`clickvision.models.backbone.BACKBONES` (with
    ``weights_path`` for the torchvision ones) or a :class:`Backbone` object.
    ``kind="pooled"`` -> float32 ``(N, C)``; ``kind="map"`` -> the last conv map, float16
    ``(N, C, h, w)`` (1280 x 4 x 4 for efficientnet-lite0 at 128 px); ``kind="cut<n>"`` -> float16
    activations entering the last ``n`` blocks (320 x 4 x 4 for ``cut1`` of efficientnet-lite0 at
    128 px). ``device="auto"``: CUDA when present for a name, the object's own device for a
    ``Backbone``. The second call with the same inputs reads the cache; ``cache=False`` always
    computes and writes nothing. A missing or corrupt image raises :class:`DataError` naming the file.
    """
    return extract_kinds(imageset, [kind], backbone, image_size, batch_size, device, weights_path, num_workers,
                         cache, cache_dir)[kind]


def extract_kinds(imageset: ImageSet, kinds: Sequence[str], backbone: str | Backbone = "efficientnet-lite0",
                  image_size: int = 128, batch_size: int = 64, device: str = "auto",
                  weights_path: str | Path | None = None, num_workers: int = 0,
                  cache: bool = True, cache_dir: str | Path | None = None) -> dict[str, np.ndarray]:
    """Several kinds of :func:`extract_features` at once: the cached ones are read, the missing
    ones computed together in ONE pass through the network (:func:`compute_kinds`) and cached
    each under its own key (the same files a one-kind call reads and writes)."""
    check_feature_access(getattr(imageset, "name", "images"))
    kinds = list(dict.fromkeys(kinds))
    for kind in kinds:
        check_kind(kind)
    if not isinstance(image_size, int) or image_size < 32:
        raise ValueError(f"image_size must be an int >= 32, got {image_size!r}")
    if isinstance(backbone, Backbone):
        dev = None if device == "auto" else runtime.get_device(device)
        name = backbone.name
    else:
        dev = runtime.get_device(None if device == "auto" else device)
        name = str(backbone)

    def compute(which: list[str]) -> dict[str, np.ndarray]:
        model = backbone if isinstance(backbone, Backbone) else load_backbone(backbone, weights_path=weights_path)
        return compute_kinds(imageset, model, image_size, which, batch_size, dev, num_workers)

    if not cache:
        return compute(kinds)
    common = [f"v{CACHE_VERSION}", images_fingerprint(imageset), backbone_fingerprint(backbone, weights_path),
              str(image_size)]
    keys = {k: hashlib.sha256("|".join([*common, k]).encode()).hexdigest() for k in kinds}
    where = {k: feature_cache_path(imageset.name, name, image_size, k, keys[k], cache_dir) for k in kinds}
    out = {k: hit for k in kinds if (hit := _read_cached(where[k], len(imageset))) is not None}
    missing = [k for k in kinds if k not in out]
    if not missing:
        return out
    prefixes = {k: where[k].name.rsplit("__", 1)[0] for k in missing}
    with contextlib.ExitStack() as stack:
        for k in sorted(missing):  # one lock order for every caller: no deadlock
            stack.enter_context(file_lock(where[k].parent / prefixes[k]))
        for k in list(missing):  # another worker may have finished some meanwhile
            hit = _read_cached(where[k], len(imageset))
            if hit is not None:
                out[k] = hit
                missing.remove(k)
        if missing:
            t0 = time.perf_counter()
            computed = compute(missing)
            seconds = time.perf_counter() - t0
            for k in missing:
                feats = computed[k]
                with atomic_path(where[k], suffix=".npy") as tmp, open(tmp, "wb") as fh:
                    np.save(fh, feats, allow_pickle=False)
                meta = {"dataset": imageset.name, "backbone": name, "image_size": image_size, "kind": k,
                        "rows": len(imageset), "shape": list(feats.shape), "dtype": str(feats.dtype),
                        "key": keys[k], "seconds": round(seconds, 2), "computed_with": missing,
                        "images_per_s": round(len(imageset) / max(seconds, 1e-9), 1)}
                atomic_write_text(where[k].with_suffix(".json"), json.dumps(meta, indent=2) + "\n")
                for stale in where[k].parent.glob(f"{prefixes[k]}__*"):
                    if stale.suffix in (".npy", ".json") and stale.stem != where[k].stem:
                        stale.unlink(missing_ok=True)
                out[k] = feats
            log.info("features %s %s: %d images in %.1f s (%.1f images/s)", imageset.name, "+".join(missing),
                     len(imageset), seconds, len(imageset) / max(seconds, 1e-9))
    return {k: out[k] for k in kinds}


# --- the default cache a fresh clone builds (``make features``) ----------------------------
DEFAULT_SETS = {  # data set -> feature kinds the notebooks read (paper A's CONV needs the map;
    # cut1 feeds the one-block trainable trunk of the default profile, models/trunk.py)
    "emoji": ("pooled", "map", "cut1"),
    "openclipart": ("pooled", "cut1"),
}
VENDOR_KINDS = ("pooled", "map", "cut1")  # each Iconify emoji vendor's subset (map: SCDA on a distant target, A.10)
#: The parts of the default cache, in the order a plain ``build`` fills them; each can be built alone
#: (``build --only NAME``; the workbook builds them as separate tasks, clickvision.workbook.FEATURE_ORDER):
#: the two :data:`DEFAULT_SETS` and ``vendors``, the Iconify emoji vendors' subsets (``emoji[<vendor>]``).
CACHE_SETS = (*DEFAULT_SETS, "vendors")
#: Comma-separated :data:`CACHE_SETS` in a process that may read only those parts of the default cache
#: (the workbook starts a notebook once the parts it reads are built; see check_feature_access).
FEATURE_SETS_ENV = "CLICKVISION_FEATURE_SETS"


def cache_set(name: str) -> str | None:
    """The part of the default cache (:data:`CACHE_SETS`) image set ``name`` belongs to: ``"emoji"``
    for the base emoji set, ``"vendors"`` for an emoji selection with Iconify vendors (``"emoji[...]"``),
    ``"openclipart"``; None for any other set (the default cache does not hold it)."""
    base, _subset = _split_name(str(name))
    if base == "emoji":
        return "vendors" if "[" in str(name) else "emoji"
    return base if base in DEFAULT_SETS else None


def check_feature_access(name: str) -> None:
    """Raise when this process may not read the features of image set ``name``: with
    :data:`NO_FEATURES_ENV` ``=1`` none at all; with :data:`FEATURE_SETS_ENV` only the parts of the
    default cache it lists (sets outside the default cache are computed on demand and stay allowed)."""
    if os.environ.get(NO_FEATURES_ENV) == "1":
        raise RuntimeError(f"{name}: this process runs without image features "
                           f"({NO_FEATURES_ENV}=1: the workbook runs the notebooks of "
                           "clickvision.workbook.FEATURE_FREE while the feature cache is being built); a notebook "
                           "that reads features must not be listed there")
    allowed = os.environ.get(FEATURE_SETS_ENV)
    part = cache_set(name)
    if allowed is None or part is None or part in {s.strip() for s in allowed.split(",")}:
        return
    raise RuntimeError(f"{name}: this process may read only the feature sets {allowed.strip() or '(none)'} "
                       f"({FEATURE_SETS_ENV}: the workbook starts a notebook once the parts of the feature cache it "
                       f"reads are built, clickvision.workbook.FEATURE_READS), not {part!r}; add {part!r} to the "
                       "notebook's entry there")


def _cache_jobs(only: Sequence[str] | None = None) -> list[tuple[str, object, tuple[str, ...]]]:
    """``(part, loader, kinds)`` of every image set of the parts ``only`` (default: all of
    :data:`CACHE_SETS`), in :data:`CACHE_SETS` order."""
    from . import data
    from .data.emoji import ICONIFY_VENDORS

    parts = list(CACHE_SETS) if only is None else list(dict.fromkeys(only))
    unknown = [p for p in parts if p not in CACHE_SETS]
    if unknown:
        raise ValueError(f"unknown feature set(s) {unknown}; choose from {CACHE_SETS}")
    loaders = {"emoji": data.load_emoji, "openclipart": data.load_openclipart}
    # the default sets, then the Iconify emoji vendors, one cache subset each (so the default emoji
    # entry keeps its key): pooled for 00.02's vendor-gap table, the map and cut1 (the same pass) for
    # paper A on the target chosen from that table (A.10-A.13's SCDA and CONV read the map, A.14 cut1)
    jobs = [(name, loaders[name], kinds) for name, kinds in DEFAULT_SETS.items()]
    jobs += [("vendors", lambda v=vendor: data.load_emoji(vendors=[v]), VENDOR_KINDS) for vendor in ICONIFY_VENDORS]
    return [job for part in CACHE_SETS if part in parts for job in jobs if job[0] == part]


def build_default_cache(image_size: int = 128, echo=print, only: Sequence[str] | None = None) -> dict[str, float]:
    """Fill the feature cache for the embedded sets' default loaders; return seconds per entry.

    ``only``: the parts of :data:`CACHE_SETS` to build (default: every one, in that order); the
    numbers do not depend on which parts are built together or in which order. A second call only
    verifies the cache keys (hashing the image files) and returns fast.
    """
    jobs = [(load, kinds) for _part, load, kinds in _cache_jobs(only)]
    times = {}
    for load, kinds in jobs:
        images = load()
        t0 = time.perf_counter()
        got = extract_kinds(images, kinds, image_size=image_size)  # one pass for all kinds
        dt = times[f"{images.name}/{'+'.join(kinds)}"] = time.perf_counter() - t0
        echo(f"features {images.name} {'+'.join(kinds)} {image_size}px: "
             + ", ".join(f"{k} {tuple(v.shape)}" for k, v in got.items())
             + f" ({len(images) / max(dt, 1e-9):.0f} images/s incl. cache check) in {dt:.1f} s")
    return times


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m clickvision.features",
                                 description="Build the backbone feature cache of the embedded data sets.")
    ap.add_argument("command", choices=["build"])
    ap.add_argument("--image-size", type=int, default=128)
    ap.add_argument("--only", action="append", choices=CACHE_SETS, metavar="NAME",
                    help=f"build only this part of the cache (repeatable; one of {', '.join(CACHE_SETS)}); "
                         "default: every part")
    args = ap.parse_args(argv)
    build_default_cache(args.image_size, only=args.only)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
