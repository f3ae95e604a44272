"""Paper A on a target vendor chosen from 00.02's measured gaps (issue #18 item 2): loading and naming."""
from __future__ import annotations

import numpy as np
import pytest

from clickvision.experiments.paper_a import core as A
from clickvision.experiments.paper_a import data as PD


def test_load_data_reads_the_chosen_target_vendor_beside_the_same_source():
    base = A.load_data("smoke", with_map=False)
    vendor, choice = A.resolve_target("auto")
    assert choice is not None and vendor == choice.targets[0] == PD.choose_domains().targets[0]
    other = A.load_data("smoke", with_map=False, target_vendor=vendor)
    assert base.meta["target_vendor"] == PD.TARGET_VENDOR and other.meta["target_vendor"] == vendor
    assert (other.target.items["domain"] == vendor).all() and (base.target.items["domain"] == PD.TARGET_VENDOR).all()
    # the same source rows, clicks and label indexing: only the target changes
    assert np.array_equal(base.source.y, other.source.y) and np.array_equal(base.source.phi, other.source.phi)
    assert base.classes == other.classes
    names = np.array(other.classes, dtype=object)[other.target.y]
    assert (names == other.target.items["label"].to_numpy()).all()
    assert set(other.target.split) <= {"train", "val", "test"} and len(other.target.rows("test"))


def test_target_vendor_errors_are_named():
    assert A.resolve_target("twitter") == ("twitter", None)
    with pytest.raises(ValueError, match="target_vendor must be an emoji vendor other than the source"):
        A.resolve_target("google")
    with pytest.raises(ValueError, match="target_vendor must be"):
        A.load_data("smoke", with_map=False, target_vendor="")
