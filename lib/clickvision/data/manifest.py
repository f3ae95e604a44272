"""``data/MANIFEST.json``: what each built data set came from and what was built.

One entry per data set::

    {"source": "npm emoji-datasource-google 16.0.0", "version": "16.0.0",
     "licence": "Apache-2.0 (images)", "simulated": false, "committed": false,
     "counts": {"images": 1911, ...}, "params": {...},
     "artifacts": {"data/processed/emoji/items.csv": "<sha256>", ...}}

Artifact paths are relative to the project root. Builders call :func:`record_build`
after writing their artifacts and :func:`is_built` to skip finished work. An image set's
artifacts include its image index (``images.sha256``, see
:func:`clickvision.data.build.write_image_index`), through which the manifest vouches for
every image: :func:`damaged_images` lists the images that no longer match it.
"""
from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

from .. import paths
from ..io import atomic_write_text, file_lock

MANIFEST = paths.DATA_DIR / "MANIFEST.json"


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def sha256_files(files: list[Path]) -> str:
    """One digest over many files (sorted by relative name): for image folders."""
    h = hashlib.sha256()
    for f in sorted(files):
        h.update(str(f.name).encode())
        h.update(sha256_file(f).encode())
    return h.hexdigest()


def _rel(path: Path) -> str:
    path = Path(path).resolve()
    try:
        return str(path.relative_to(paths.PROJ_ROOT))
    except ValueError:
        return str(path)


def load_manifest() -> dict[str, Any]:
    if not MANIFEST.exists():
        return {}
    try:
        return json.loads(MANIFEST.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{MANIFEST} is not valid JSON (line {exc.lineno}): {exc.msg}") from exc


def record_build(name: str, entry: dict[str, Any], artifacts: list[Path]) -> dict[str, Any]:
    """Write ``name``'s entry with sha256 of every artifact (atomic, locked)."""
    entry = dict(entry)
    entry["artifacts"] = {_rel(p): sha256_file(p) for p in sorted(map(Path, artifacts))}
    with file_lock(MANIFEST):
        manifest = load_manifest()
        manifest[name] = entry
        atomic_write_text(MANIFEST, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return entry


IMAGE_CHECKS = ("none", "size", "sha256")


def damaged_images(name: str, verify: bool = False) -> list[tuple[str, str]]:
    """``[(project-relative image path, what is wrong)]`` over every image index
    (``images.sha256``) among ``name``'s artifacts: cheap (existence, byte size), or
    re-hashed against the index with ``verify``. [] when the set has no images or all are intact."""
    from .build import INDEX_NAME
    from .build import damaged_images as damaged_in

    entry = load_manifest().get(name) or {}
    out = []
    for rel in entry.get("artifacts", {}):
        index = paths.PROJ_ROOT / rel
        if index.name == INDEX_NAME:
            out += [(_rel(index.parent / image), why) for image, why in damaged_in(index.parent, verify)]
    return out


def is_built(name: str, params: dict[str, Any] | None = None, *, images: str = "size") -> bool:
    """True when ``name`` is in the manifest with the same params and its artifacts exist
    with the recorded sha256 (a changed or missing artifact means: rebuild).

    An artifact that is an image index (``images.sha256``) vouches for its images:
    ``images="size"`` (default) also checks each listed image exists with its recorded byte
    size (one ``stat`` each), ``"sha256"`` re-hashes every image, ``"none"`` skips them.
    """
    if images not in IMAGE_CHECKS:
        raise ValueError(f"images must be one of {IMAGE_CHECKS}, got {images!r}")
    entry = load_manifest().get(name)
    if not entry or not entry.get("artifacts"):
        return False
    if params is not None and entry.get("params") != json.loads(json.dumps(params)):
        return False
    for rel, digest in entry["artifacts"].items():
        p = paths.PROJ_ROOT / rel
        if not p.exists() or sha256_file(p) != digest:
            return False
    return images == "none" or not damaged_images(name, verify=images == "sha256")


def debian_version(package: str) -> str:
    """Installed version of a Debian package (``dpkg-query``), or ``"unknown"``."""
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package],
                             capture_output=True, text=True, check=False, timeout=30)
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else "unknown"
