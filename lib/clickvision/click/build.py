"""Build the default SIMULATED click logs, Dev sets and interactions from the embedded sets.

Everything written here is simulated (from real text; see :mod:`.simulator` and
:mod:`.interactions`) and says so in ``data/MANIFEST.json`` (``simulated: true``, the
parameters, the seed, the counts and the Clickture figures they were set from):

* ``data/processed/clicks/emoji-google.tsv`` -- a click log over every emoji drawn by the
  source vendor (Google), queries from the train split's text only; ``emoji-google-dev.tsv``
  (held-out queries x val/test images, Clickture Dev format) and ``emoji-google-noise.csv``
  (which images got another class's clicks);
* ``data/processed/clicks/openclipart{,-dev}.tsv``, ``openclipart-noise.csv``: the same over
  Open Clip Art;
* ``data/processed/interactions/openclipart-{events,items}.csv``: simulated user-item events
  over the Open Clip Art images (paper D).

:func:`build` skips work already recorded with the same parameters and source; the embedded
image sets must exist first (``python -m clickvision.data build``).
"""
from __future__ import annotations

import hashlib
import importlib
from pathlib import Path
from typing import Any

import pandas as pd

from .. import paths
from ..data import manifest
from ..data.base import DataError, ImageSet, Interactions, MissingSourceError
from ..io import atomic_path
from .interactions import InteractionSimConfig, simulate_interactions
from .log import read_click_log
from .simulator import (CLICKTURE_LITE, ClickSimConfig, assign_label_noise, click_log_stats,
                        simulate_dev_set, write_dev_set, write_simulated_click_log)

CLICKS_DIR = paths.PROCESSED_DIR / "clicks"
INTERACTIONS_DIR = paths.PROCESSED_DIR / "interactions"
SEED = 0
SOURCE_VENDOR = "google"
BUILD_COMMAND = "python -m clickvision.data build"
EMBEDDED = {"emoji": "clickvision.data.emoji:load_emoji", "openclipart": "clickvision.data.openclipart:load_openclipart"}


def _load_embedded(name: str, **kwargs: Any) -> ImageSet:
    """The embedded ImageSet ``name``; MissingSourceError (with the command) when not built."""
    module, func = EMBEDDED[name].split(":")
    if name not in manifest.load_manifest():
        raise MissingSourceError(f"the embedded data set {name!r} is not built yet; the simulated click "
                                 f"logs and interactions are made from it. Run:\n    {BUILD_COMMAND}")
    try:
        return getattr(importlib.import_module(module), func)(**kwargs)
    except (ImportError, AttributeError) as exc:
        raise MissingSourceError(f"cannot load the embedded data set {name!r} ({exc}). Run:\n    {BUILD_COMMAND}") from exc


def source_images(name: str) -> ImageSet:
    """The images a default simulated data set is built over (emoji: every source-vendor image)."""
    if not name.startswith("emoji"):
        return _load_embedded("openclipart")
    images = _load_embedded("emoji", vendors=(SOURCE_VENDOR,))
    if "domain" not in images.items.columns or not (images.items["domain"] == SOURCE_VENDOR).any():
        raise DataError(f"embedded emoji set has no images of vendor {SOURCE_VENDOR!r} in column 'domain'")
    return images.subset(images.items["domain"] == SOURCE_VENDOR, f"{images.name}-{SOURCE_VENDOR}")


def fingerprint(frame: pd.DataFrame) -> str:
    """sha256 of the columns the simulators read: a changed source means a rebuild."""
    cols = [c for c in ("key", "label", "labels", "text", "split", "group") if c in frame.columns]
    return hashlib.sha256(frame[cols].astype(str).to_csv(index=False).encode()).hexdigest()


def build_click_data(name: str, images: ImageSet, config: ClickSimConfig | None = None, seed: int = SEED,
                     force: bool = False, folder: Path | None = None) -> dict[str, Any]:
    """Write the SIMULATED log, Dev set and noise table of ``images``; record ``clicks-<name>``."""
    cfg, folder = config or ClickSimConfig(), Path(folder or CLICKS_DIR)
    params = {"config": cfg.to_dict(), "seed": seed, "source": images.name,
              "source_sha256": fingerprint(images.items)}
    entry_name = f"clicks-{name}"
    if not force and manifest.is_built(entry_name, params):
        return manifest.load_manifest()[entry_name]
    log_path, dev_path, noise_path = (folder / f"{name}.tsv", folder / f"{name}-dev.tsv", folder / f"{name}-noise.csv")
    write_simulated_click_log(images, log_path, cfg, seed)
    stats = click_log_stats(read_click_log(log_path))
    dev = simulate_dev_set(images, cfg, seed)
    write_dev_set(dev, dev_path)
    noise = assign_label_noise(images, cfg, seed)
    with atomic_path(noise_path) as tmp:
        noise.to_csv(tmp, index=False)
    grades = dev["relevance"].value_counts()
    counts = {**{k: round(v, 4) if isinstance(v, float) else v for k, v in stats.items()},
              "indexed_images": len(images), "image_coverage": round(stats["images"] / len(images), 4),
              "noisy_images": int(noise["noisy"].sum()), "dev_queries": int(dev["query"].nunique()),
              "dev_pairs": len(dev), **{f"dev_{n.lower()}": int(grades.get(g, 0)) for g, n in
                                        ((3, "Excellent"), (2, "Good"), (0, "Bad"))}}
    entry = {"source": f"SIMULATED click log over the real text of {images.name} (clickvision.click.simulator)",
             "simulated": True, "committed": False,
             "licence": f"derived from {images.name}: see that entry's licence",
             "format": "log: query \\t key \\t clicks; dev: query \\t key \\t Excellent|Good|Bad (Clickture Dev)",
             "calibration": {"clickture_lite": CLICKTURE_LITE,
                             "set_from": "queries_per_image and sessions_per_query: one run on emoji-google "
                                         "(seed 0) to Lite's 11.7 queries and 23.1 triads per image, 1.97 per "
                                         "query; dev_queries 1,000 and dev_candidates 80 (79,926 / 1,000): "
                                         "Clickture Dev"},
             "counts": counts, "params": params}
    return manifest.record_build(entry_name, entry, [log_path, dev_path, noise_path])


def build_interactions(name: str, images: ImageSet, config: InteractionSimConfig | None = None,
                       seed: int = SEED, force: bool = False, folder: Path | None = None) -> dict[str, Any]:
    """Write SIMULATED interactions over ``images`` (events + items CSV); record ``interactions-<name>``."""
    folder = Path(folder or INTERACTIONS_DIR)
    if config is None:
        multi = "labels" in images.items.columns and images.items["labels"].fillna("").astype(str).str.len().any()
        config = InteractionSimConfig(label_column="labels" if multi else "label")
    params = {"config": config.to_dict(), "seed": seed, "source": images.name,
              "source_sha256": fingerprint(images.items)}
    entry_name = f"interactions-{name}"
    if not force and manifest.is_built(entry_name, params):
        return manifest.load_manifest()[entry_name]
    inter = simulate_interactions(images, config, seed, name=name)
    events_path, items_path = folder / f"{name}-events.csv", folder / f"{name}-items.csv"
    for table, path in ((inter.events, events_path), (inter.items, items_path)):
        with atomic_path(path) as tmp:
            table.to_csv(tmp, index=False)
    entry = {"source": f"SIMULATED user-item interactions over {images.name} (clickvision.click.interactions)",
             "simulated": True, "committed": False,
             "licence": f"derived from {images.name}: see that entry's licence",
             "calibration": "interactions_per_item 14.1 and density 7.24e-4: paper D Table 2, Amazon Toys",
             "counts": {"events": len(inter.events), "users": inter.n_users, "items": len(inter.items),
                        "items_with_events": inter.n_items, "density": round(inter.density(), 6),
                        **{k: round(v, 4) for k, v in inter.meta["alignment"].items()}},
             "params": params}
    return manifest.record_build(entry_name, entry, [events_path, items_path])


def build(force: bool = False) -> dict[str, Any]:
    """Build every default SIMULATED data set (skips finished work); return manifest entries by name.

    Builds what its sources allow, then raises MissingSourceError naming what could not be built.
    """
    jobs = {"clicks-emoji-google": lambda: build_click_data("emoji-google", source_images("emoji-google"), force=force),
            "clicks-openclipart": lambda: build_click_data("openclipart", source_images("openclipart"), force=force),
            "interactions-openclipart": lambda: build_interactions("openclipart", source_images("openclipart"),
                                                                   force=force)}
    done, missing = {}, []
    for name, job in jobs.items():
        try:
            done[name] = job()
        except MissingSourceError as exc:
            missing.append(f"{name}: {exc}")
    if missing:
        raise MissingSourceError("simulated data not built:\n" + "\n".join(missing))
    return done


# --- readers ------------------------------------------------------------------------------------

def _built(entry_name: str, path: Path) -> Path:
    if not path.exists():
        raise MissingSourceError(f"{path} is missing: the simulated data set {entry_name!r} is not built. "
                                 f"Run:\n    {BUILD_COMMAND}")
    return path


def click_log_path(name: str = "emoji-google") -> Path:
    """Path of a built SIMULATED click log (read it with :func:`clickvision.click.log.iter_click_log`)."""
    return _built(f"clicks-{name}", CLICKS_DIR / f"{name}.tsv")


def load_dev_set(name: str = "emoji-google") -> pd.DataFrame:
    """A built SIMULATED Dev set: ``query, key, relevance, judgment``."""
    from ..data.originals.clickture import read_dev

    return read_dev(_built(f"clicks-{name}", CLICKS_DIR / f"{name}-dev.tsv"))


def load_label_noise(name: str = "emoji-google") -> pd.DataFrame:
    """Which images of a built SIMULATED log carry another class's clicks (``noisy`` column)."""
    path = _built(f"clicks-{name}", CLICKS_DIR / f"{name}-noise.csv")
    return pd.read_csv(path, dtype={"key": str, "label": str, "click_label": str, "donor_key": str},
                       keep_default_na=False)


def load_simulated_interactions(name: str = "openclipart") -> Interactions:
    """Built SIMULATED interactions as :class:`Interactions` (``meta['simulated']`` is True)."""
    events = pd.read_csv(_built(f"interactions-{name}", INTERACTIONS_DIR / f"{name}-events.csv"),
                         dtype={"user": "int64", "item": str, "rating": "float32"})
    items = pd.read_csv(INTERACTIONS_DIR / f"{name}-items.csv", dtype={"item": str}, keep_default_na=False)
    entry = manifest.load_manifest().get(f"interactions-{name}", {})
    return Interactions(name, events, items, {"simulated": True, **entry})
