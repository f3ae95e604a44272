"""Feature cache: row-aligned features, a second call reads the cache without computing,
a changed input rebuilds, maps vs pooled vectors, and bad images name their file."""
from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from torch import nn

from clickvision.data.base import DataError, ImageSet
from clickvision.features import compute_features, extract_features, feature_cache_path, images_fingerprint
from clickvision.models.backbone import Backbone


class CountingBackbone(Backbone):
    """A tiny conv 'backbone' (4 channels, stride 8) that counts the images it sees."""

    def __init__(self) -> None:
        torch.manual_seed(0)
        super().__init__("tiny", nn.Conv2d(3, 4, kernel_size=8, stride=8), 4, (0.5,) * 3, (0.5,) * 3)
        self.images_seen = 0

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        self.images_seen += len(x)
        return self.net(x)

    def _named_blocks(self):
        return [("conv", self.net)]


def items(n: int, paths=None) -> pd.DataFrame:
    return pd.DataFrame({"key": [f"k{i}" for i in range(n)], "path": paths or [""] * n,
                         "label": ["a", "b"] * (n // 2) + ["a"] * (n % 2), "split": ["train"] * n})


def pixel_set(n: int = 5, seed: int = 0, name: str = "toy[train]") -> ImageSet:
    pix = np.random.default_rng(seed).integers(0, 256, size=(n, 40, 40, 3), dtype=np.uint8)
    return ImageSet(name, items(n), pixels=pix)


def png_set(folder, n: int = 3) -> ImageSet:
    rng = np.random.default_rng(1)
    files = []
    for i in range(n):
        f = folder / f"img{i}.png"
        Image.fromarray(rng.integers(0, 256, size=(36, 48, 3), dtype=np.uint8)).save(f)
        files.append(str(f))
    return ImageSet("pngs", items(n, files))


def test_pooled_and_map_shapes_dtypes_and_agreement(tmp_path):
    bb, ims = CountingBackbone(), pixel_set()
    pooled = extract_features(ims, bb, image_size=32, kind="pooled", cache_dir=tmp_path)
    fmap = extract_features(ims, bb, image_size=32, kind="map", cache_dir=tmp_path)
    assert pooled.shape == (5, 4) and pooled.dtype == np.float32
    assert fmap.shape == (5, 4, 4, 4) and fmap.dtype == np.float16  # 32 px / stride 8
    np.testing.assert_allclose(fmap.astype(np.float32).mean(axis=(2, 3)), pooled, rtol=0, atol=2e-2)
    # row i is image i: recompute image 3 alone by hand
    x = bb.transform(32)(ims.load_image(3))[None]
    with torch.inference_mode():
        np.testing.assert_allclose(pooled[3], bb.net(x).mean(dim=(2, 3))[0].numpy(), rtol=1e-5, atol=1e-5)


def test_second_call_reads_the_cache(tmp_path):
    bb, ims = CountingBackbone(), pixel_set()
    first = extract_features(ims, bb, image_size=32, cache_dir=tmp_path, batch_size=2)
    assert bb.images_seen == 5
    second = extract_features(ims, bb, image_size=32, cache_dir=tmp_path, batch_size=2)
    assert bb.images_seen == 5  # nothing recomputed
    assert np.array_equal(first, second) and second.dtype == first.dtype
    cached = sorted(p.name for p in (tmp_path / "toy").iterdir() if p.suffix == ".npy")
    assert len(cached) == 1 and cached[0].startswith("train__tiny__32px__pooled__")
    # another size, kind or subset is another entry
    extract_features(ims, bb, image_size=64, cache_dir=tmp_path)
    assert bb.images_seen == 10


def test_changed_input_rebuilds_and_replaces_the_stale_file(tmp_path):
    bb, ims = CountingBackbone(), pixel_set()
    before = extract_features(ims, bb, image_size=32, cache_dir=tmp_path)
    changed = ImageSet(ims.name, ims.items.copy(), pixels=ims.pixels.copy())
    changed.pixels[2, 0, 0, 0] ^= 0xFF  # one pixel of one image
    after = extract_features(changed, bb, image_size=32, cache_dir=tmp_path)
    assert bb.images_seen == 10
    assert not np.array_equal(before[2], after[2]) and np.array_equal(before[[0, 1, 3, 4]], after[[0, 1, 3, 4]])
    assert len(list((tmp_path / "toy").glob("*.npy"))) == 1  # the stale entry is gone
    # reordering rows changes the key too (features are row-aligned)
    order = [4, 3, 2, 1, 0]
    flipped = ImageSet(ims.name, changed.items.iloc[order].reset_index(drop=True), pixels=changed.pixels[order])
    assert images_fingerprint(flipped) != images_fingerprint(changed)
    np.testing.assert_array_equal(extract_features(flipped, bb, image_size=32, cache_dir=tmp_path), after[order])


def test_changed_weights_rebuild(tmp_path):
    bb, ims = CountingBackbone(), pixel_set()
    extract_features(ims, bb, image_size=32, cache_dir=tmp_path)
    with torch.no_grad():
        bb.net.bias += 1.0
    extract_features(ims, bb, image_size=32, cache_dir=tmp_path)
    assert bb.images_seen == 10


def test_png_files_key_on_content_not_mtime(tmp_path):
    bb, ims = CountingBackbone(), png_set(tmp_path)
    first = extract_features(ims, bb, image_size=32, cache_dir=tmp_path / "cache")
    f = tmp_path / "img1.png"
    os.utime(f, ns=(1, 1))  # same bytes, another mtime: still a hit
    assert np.array_equal(extract_features(ims, bb, image_size=32, cache_dir=tmp_path / "cache"), first)
    assert bb.images_seen == 3
    Image.new("RGB", (48, 36), (10, 200, 30)).save(f)  # new content: rebuild
    second = extract_features(ims, bb, image_size=32, cache_dir=tmp_path / "cache")
    assert bb.images_seen == 6 and not np.array_equal(first[1], second[1])


def test_corrupt_and_missing_images_name_the_file(tmp_path):
    ims = png_set(tmp_path)
    (tmp_path / "img2.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not a png")
    for workers in (0, 1):
        with pytest.raises(DataError, match="img2.png"):
            extract_features(ims, CountingBackbone(), image_size=32, cache_dir=tmp_path / "cache",
                             num_workers=workers)
    assert not list((tmp_path / "cache").rglob("*.npy"))  # nothing half-written
    (tmp_path / "img0.png").unlink()
    with pytest.raises(DataError, match="missing image file.*img0.png"):
        extract_features(ims, CountingBackbone(), image_size=32, cache_dir=tmp_path / "cache")


def test_workers_and_batch_size_do_not_change_the_numbers():
    bb, ims = CountingBackbone(), pixel_set(n=7)
    a = compute_features(ims, bb, image_size=32, batch_size=3, num_workers=0)
    b = compute_features(ims, bb, image_size=32, batch_size=7, num_workers=1, channels_last=False)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_no_cache_writes_nothing_and_bad_arguments_are_named(tmp_path):
    bb, ims = CountingBackbone(), pixel_set()
    extract_features(ims, bb, image_size=32, cache=False, cache_dir=tmp_path)
    assert not list(tmp_path.rglob("*.npy"))
    with pytest.raises(ValueError, match="kind"):
        extract_features(ims, bb, image_size=32, kind="fc7", cache_dir=tmp_path)
    with pytest.raises(ValueError, match="image_size"):
        extract_features(ims, bb, image_size=8, cache_dir=tmp_path)
    with pytest.raises(ValueError, match="unknown backbone"):
        extract_features(ims, "alexnet", image_size=32, cache_dir=tmp_path)
    empty = extract_features(pixel_set(n=5).subset(np.zeros(5, bool), "toy[none]"), bb, image_size=32,
                             kind="map", cache_dir=tmp_path)
    assert empty.shape == (0, 4, 4, 4)


def test_cache_layout():
    p = feature_cache_path("emoji[train]", "efficientnet-lite0", 128, "map", "ab" * 32)
    assert p.parent.name == "emoji" and p.parent.parent.name == "features"
    assert p.name == "train__efficientnet-lite0__128px__map__" + "ab" * 8 + ".npy"
    assert feature_cache_path("open clip/art", "x", 64, "pooled", "0" * 64).parent.name == "open_clip_art"


def test_named_efficientnet_is_cached_by_weights_file(tmp_path):
    ims = pixel_set(n=2)
    a = extract_features(ims, "efficientnet-lite0", image_size=32, cache_dir=tmp_path)
    assert a.shape == (2, 1280) and np.isfinite(a).all()
    path = next((tmp_path / "toy").glob("*.npy"))
    mtime = path.stat().st_mtime_ns
    b = extract_features(ims, "efficientnet-lite0", image_size=32, cache_dir=tmp_path)
    assert np.array_equal(a, b) and path.stat().st_mtime_ns == mtime


def test_the_cache_does_not_depend_on_the_callers_thread_count():
    """The real backbone's features are the same bit for bit whatever thread count the caller set (the
    extraction pins its own, features.EXTRACTION_THREADS): on 2 threads oneDNN computed a partial last
    batch differently, so a cache built on another machine's cores differed."""
    from clickvision.features import EXTRACTION_THREADS, compute_kinds
    from clickvision.models.backbone import load_backbone
    bb = load_backbone().eval()
    ims = pixel_set(n=10, seed=3)
    kinds = ["pooled", "map", "cut1"]
    before = torch.get_num_threads()
    seen = []
    try:
        out = {}
        for n in (1, 2):
            torch.set_num_threads(n)
            out[n] = compute_kinds(ims, bb, 128, kinds, batch_size=8)  # a partial last batch of 2
            seen.append(torch.get_num_threads())
    finally:
        torch.set_num_threads(before)
    assert seen == [1, 2] and EXTRACTION_THREADS == 1  # the caller's setting is given back
    for k in kinds:
        assert np.array_equal(out[1][k], out[2][k]), k
