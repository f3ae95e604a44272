"""The objects every data set loader returns, embedded or original.

A notebook switches data by one parameter because every loader returns one of these:

* :class:`ImageSet` -- images with labels (and optional text, domain, concept, split).
  ``items`` is a DataFrame with one row per image and at least the columns
  ``key`` (unique str), ``path`` (image file; may be empty when ``pixels`` are given),
  ``label`` (str class name) and ``split`` ("train" / "val" / "test" or "").
  Optional columns: ``domain`` (e.g. vendor), ``group`` (coarse class: Unicode group,
  "object" family), ``concept`` (twin id: all drawings of one emoji share it; splits keep
  a concept together), ``text`` (human text: names, keywords, titles), ``labels``
  (multi-label, "|"-joined).
* :class:`Interactions` -- user-item events (``user``, ``item``, ``rating``,
  ``timestamp``) with an ``items`` table (``item`` + metadata such as ``genres``).
* Click logs are streams of :class:`clickvision.click.log.ClickRecord` in Clickture's
  format (``query \\t image_key \\t clicks``), see :mod:`clickvision.click.log`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

IMAGESET_REQUIRED = ("key", "path", "label", "split")
INTERACTION_REQUIRED = ("user", "item")
SPLITS = ("train", "val", "test")


class DataError(ValueError):
    """Bad or missing input data; the message names the file (and line) at fault."""


class MissingSourceError(DataError):
    """A source is not installed; the message says exactly how to get it."""


@dataclass
class ImageSet:
    """A labelled image collection (see module docstring for the columns)."""

    name: str
    items: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)
    pixels: np.ndarray | None = None  # optional in-memory images (N, H, W[, C]) uint8, row-aligned

    def __post_init__(self) -> None:
        missing = [c for c in IMAGESET_REQUIRED if c not in self.items.columns]
        if missing:
            raise DataError(f"ImageSet {self.name!r}: items lack columns {missing}")
        if self.items["key"].duplicated().any():
            dup = self.items.loc[self.items["key"].duplicated(), "key"].iloc[0]
            raise DataError(f"ImageSet {self.name!r}: duplicate key {dup!r}")
        if self.pixels is not None and len(self.pixels) != len(self.items):
            raise DataError(f"ImageSet {self.name!r}: {len(self.pixels)} pixel arrays for {len(self.items)} items")

    def __len__(self) -> int:
        return len(self.items)

    @property
    def classes(self) -> list[str]:
        return sorted(self.items["label"].unique())

    def label_ids(self, classes: list[str] | None = None) -> np.ndarray:
        classes = classes or self.classes
        index = {c: i for i, c in enumerate(classes)}
        return self.items["label"].map(index).to_numpy()

    def split(self, name: str) -> "ImageSet":
        return self.subset(self.items["split"] == name, f"{self.name}[{name}]")

    def subset(self, mask, name: str | None = None) -> "ImageSet":
        mask = np.asarray(mask)
        items = self.items[mask].reset_index(drop=True)
        pix = None if self.pixels is None else self.pixels[mask]
        return ImageSet(name or self.name, items, dict(self.meta), pix)

    def load_image(self, i: int):
        """Row ``i`` as a PIL RGB image; a missing or corrupt file raises DataError naming it."""
        from PIL import Image

        if self.pixels is not None:
            return Image.fromarray(self.pixels[i]).convert("RGB")
        path = Path(self.items["path"].iloc[i])
        try:
            with Image.open(path) as im:
                if im.mode in ("P", "LA", "RGBA") or "transparency" in im.info:
                    im = im.convert("RGBA")
                    bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
                    return Image.alpha_composite(bg, im).convert("RGB")
                return im.convert("RGB")
        except FileNotFoundError as exc:
            raise DataError(f"missing image file: {path}") from exc
        except Exception as exc:
            raise DataError(f"corrupt or unreadable image file: {path} ({exc})") from exc


@dataclass
class Interactions:
    """User-item events plus an item table."""

    name: str
    events: pd.DataFrame
    items: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        missing = [c for c in INTERACTION_REQUIRED if c not in self.events.columns]
        if missing:
            raise DataError(f"Interactions {self.name!r}: events lack columns {missing}")
        if "item" not in self.items.columns:
            raise DataError(f"Interactions {self.name!r}: items table lacks column 'item'")

    @property
    def n_users(self) -> int:
        return int(self.events["user"].nunique())

    @property
    def n_items(self) -> int:
        return int(self.events["item"].nunique())

    def density(self) -> float:
        return len(self.events) / max(1, self.n_users * self.n_items)
