"""Deterministic splits: grouped stratified train/val/test, domains, class subsets, fractions.

Every function here is a pure function of its inputs and a seed (same seed, same answer,
whatever the platform), and never leaks a *twin*: rows that share a group (every vendor's
drawing of one emoji, every copy of one clip-art image) always land in the same split.

Each class is split on its own, with a random stream derived from ``(seed, class name)``.
So a class's split does not depend on which other classes are present: filtering classes
after the build (``min_concepts_per_class``) leaves every kept row's split unchanged.
"""
from __future__ import annotations

import math
import zlib
from collections.abc import Hashable, Iterable, Sequence

import numpy as np
import pandas as pd

from .base import SPLITS

DEFAULT_FRACTIONS: tuple[float, float, float] = (0.6, 0.2, 0.2)


def _class_rng(seed: int, name: Hashable, salt: str = "") -> np.random.Generator:
    """A generator seeded by ``seed`` and a stable (crc32) hash of the class name."""
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return np.random.default_rng([int(seed), zlib.crc32(f"{salt}\x00{name}".encode())])


def _allocate(n: int, fractions: Sequence[float], rng: np.random.Generator | None = None) -> list[int]:
    """Split ``n`` items into ``len(fractions)`` counts by the largest-remainder rule.

    Each count is within 1 of ``fraction * n``. Ties in the remainders (val and test at
    0.2/0.2) go to the earlier split, or to a random one when ``rng`` is given, so over
    many classes neither split is favoured.
    """
    exact = [f * n for f in fractions]
    counts = [math.floor(x) for x in exact]
    tiebreak = list(range(len(exact))) if rng is None else list(rng.permutation(len(exact)))
    order = sorted(range(len(exact)), key=lambda i: (-round(exact[i] - counts[i], 9), tiebreak[i]))
    for i in order[: n - sum(counts)]:
        counts[i] += 1
    return counts


def _check_fractions(fractions: Sequence[float]) -> tuple[float, ...]:
    fr = tuple(float(f) for f in fractions)
    if len(fr) != len(SPLITS) or any(f < 0 for f in fr) or not math.isclose(sum(fr), 1.0, abs_tol=1e-9):
        raise ValueError(f"fractions must be 3 non-negative numbers (train, val, test) summing to 1, got {fractions!r}")
    return fr


def grouped_stratified_split(
    labels: Sequence[Hashable],
    groups: Sequence[Hashable] | None = None,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    seed: int = 0,
) -> np.ndarray:
    """Assign every row to "train" / "val" / "test", stratified by label, grouped by group.

    Per class, the class's groups are shuffled (seeded by ``seed`` and the class name) and
    cut by the largest-remainder rule, so each split holds within one *group* of
    ``fraction * n_groups`` of every class. All rows of a group get the same split. A group
    whose rows carry several labels is assigned to its most frequent label (ties: the
    smallest label) and moves as a whole. ``groups=None`` makes every row its own group.

    Returns an array of split names, row-aligned with ``labels``.
    """
    fr = _check_fractions(fractions)
    labels = pd.Series(list(labels), dtype=object)
    groups = pd.Series(range(len(labels)) if groups is None else list(groups), dtype=object)
    if len(groups) != len(labels):
        raise ValueError(f"labels ({len(labels)}) and groups ({len(groups)}) differ in length")
    if labels.isna().any() or groups.isna().any():
        raise ValueError("labels and groups must not contain missing values")
    out = np.empty(len(labels), dtype=object)
    if len(labels) == 0:
        return out
    pairs = pd.DataFrame({"label": labels.astype(str), "group": groups.astype(str)})
    sizes = pairs.groupby(["group", "label"], sort=True).size().reset_index(name="n")
    # Each group's class: the most frequent label (ties -> smallest label, as sorted).
    sizes = sizes.sort_values(["group", "n", "label"], ascending=[True, False, True], kind="stable")
    group_label = sizes.drop_duplicates("group").set_index("group")["label"]
    split_of_group: dict[str, str] = {}
    for label, members in group_label.groupby(group_label, sort=True):
        names = np.array(sorted(members.index))
        rng = _class_rng(seed, label)
        names = names[rng.permutation(len(names))]
        start = 0
        for split, count in zip(SPLITS, _allocate(len(names), fr, rng)):
            for g in names[start:start + count]:
                split_of_group[g] = split
            start += count
    out[:] = pairs["group"].map(split_of_group).to_numpy()
    return out


def domain_assignment(
    domains: Sequence[str],
    source: str | Iterable[str] = "google",
    target: str | Iterable[str] = "twitter",
) -> np.ndarray:
    """Role of each row in domain adaptation (paper A's source vs target domain).

    ``source`` / ``target`` name one vendor or several (e.g. ``("google", "openmoji")``).
    Returns "source", "target", or "" (a domain in neither role), row-aligned.
    """
    src = {source} if isinstance(source, str) else set(source)
    tgt = {target} if isinstance(target, str) else set(target)
    if not src or not tgt:
        raise ValueError("source and target must each name at least one domain")
    if src & tgt:
        raise ValueError(f"a domain cannot be both source and target: {sorted(src & tgt)}")
    doms = np.asarray(list(domains), dtype=object)
    present = set(doms.tolist())
    unknown = (src | tgt) - present
    if unknown:
        raise ValueError(f"domain(s) {sorted(unknown)} not in the data (present: {sorted(present)})")
    out = np.full(len(doms), "", dtype=object)
    out[np.isin(doms, list(src))] = "source"
    out[np.isin(doms, list(tgt))] = "target"
    return out


def nested_class_subsets(
    classes: Sequence[str],
    sizes: Sequence[int],
    n_draws: int = 1,
    seed: int = 0,
) -> list[dict[int, list[str]]]:
    """Growing nested random class subsets for unseen-category runs (paper A, Fig. 13).

    Each draw shuffles the classes once and takes prefixes, so within a draw every larger
    subset contains every smaller one. Returns one ``{size: sorted class list}`` per draw.
    """
    pool = sorted(set(classes))
    if len(pool) != len(classes):
        raise ValueError("classes must be distinct")
    bad = [s for s in sizes if not (isinstance(s, (int, np.integer)) and 1 <= s <= len(pool))]
    if bad:
        raise ValueError(f"sizes must be integers in [1, {len(pool)}], got {bad}")
    if not isinstance(n_draws, (int, np.integer)) or n_draws < 1:
        raise ValueError(f"n_draws must be a positive integer, got {n_draws!r}")
    rng = _class_rng(seed, "nested_class_subsets")
    draws = []
    for _ in range(n_draws):
        order = [pool[i] for i in rng.permutation(len(pool))]
        draws.append({int(s): sorted(order[:s]) for s in sorted(set(sizes))})
    return draws


def sample_fraction(
    items: pd.DataFrame,
    alpha: float,
    seed: int = 0,
    label_col: str = "label",
    group_col: str | None = None,
) -> pd.DataFrame:
    """Keep ``ceil(alpha * n_k)`` of each class k (paper A's labelled-fraction runs).

    The order within a class is a fixed seeded permutation that does not depend on
    ``alpha``, so samples are nested: the rows kept at alpha=0.1 are among those kept at
    0.5. With ``group_col`` the unit is a group (all rows of a kept group are kept).
    Returns the kept rows in their original order (index preserved).
    """
    if not (0.0 < float(alpha) <= 1.0):
        raise ValueError(f"alpha must be in (0, 1], got {alpha!r}")
    if label_col not in items.columns or (group_col and group_col not in items.columns):
        raise ValueError(f"items lack column {label_col!r}" + (f" or {group_col!r}" if group_col else ""))
    unit = (items[group_col].astype(str) if group_col else pd.Series(np.arange(len(items)).astype(str))).to_numpy()
    labels = items[label_col].astype(str).to_numpy()
    keep_units: set[str] = set()
    for label in sorted(set(labels)):
        names = sorted(set(unit[labels == label]))
        names = [names[i] for i in _class_rng(seed, label, "sample_fraction").permutation(len(names))]
        keep_units.update(names[: math.ceil(float(alpha) * len(names) - 1e-9)])
    return items[np.isin(unit, list(keep_units))]
