"""One verdict engine for the papers' claims: a claim, tidy per-item scores in, a verdict out.

A :class:`Claim` names its ``kind``:

* ``direction``: "A beats B". The estimate is mean(A) - mean(B), positive in the claimed
  direction (``alternative="less"`` flips it for claims such as "A has fewer errors").
* ``ordering``: "A > B > C". Judged pair by pair (A > B, B > C); the weakest link decides:
  supported only if every adjacent pair is, contradicted if any pair is, else inconclusive.
  The row's estimate, interval and MDE are those of the weakest pair (worst verdict, then
  lowest lower bound); every pair is in ``Judgement.pairs`` and in the evidence text.
* ``equivalence``: "little impact", "no better". Two one-sided tests at level
  (1 - CONFIDENCE) / 2 each, i.e. the CONFIDENCE interval of A - B must lie inside
  (-margin, +margin): supported. Contradicted when the interval lies wholly outside the
  margin; else inconclusive. The estimate is the raw difference A - B.
* ``trend``: "the metric rises with the setting". The arms are the settings in order
  (``Claim.settings`` gives their values, default 0, 1, 2 ...). The statistic is the least
  squares slope of the arm means on the setting, times the setting's range: the fitted change
  from the first to the last setting, in the metric's unit (comparable to a paper's
  "first vs last" number). It tests an overall rise, not strict monotonicity (use
  ``ordering`` for "every step rises").
* ``untestable`` / ``structural``: no statistics, a one-sentence ``reason``; the verdict is
  the kind itself.

A direction, ordering or trend claim whose compared arms scored identically on every seed and
item (a comparison with no contrast, e.g. a setting selected on validation switched the
difference off) is recorded ``untestable`` with that reason: its interval would be [0, 0] with
an MDE of 0. (For an equivalence claim identical scores are evidence, and it is judged as usual.)

Data: a tidy frame with columns ``method`` (or ``arm``), ``seed``, ``item`` (a test image,
a query ...), ``value`` (that item's score: 0/1 correctness, AP, DCG ...), optionally
``fold`` (then an item is the pair (fold, item)). Every arm of a claim must be scored on the
same seeds and the same items (a paired design), every seed on the same items.

Intervals: a two-level bootstrap WITH replacement. Each resample draws seeds and, separately,
test items (the same drawn seeds and items for every arm, so comparisons are paired), and
takes the mean over the drawn seeds and items per arm; every contrast of a claim is computed
on those same resamples. The percentile interval is at the one workbook-wide level
:data:`CONFIDENCE` (0.90); the resamples come from ``numpy.random.default_rng(seed)``.
scipy.stats.bootstrap resamples one level and one statistic at a time, so the two levels are
drawn here as index matrices turned into count matrices (one matrix product per chunk of
resamples, no Python loop per resample). Resampling both levels of a crossed design counts the
seed-by-item noise at both levels, so the interval errs on the wide (conservative) side.

Metrics that do not decompose over items (MAP over a whole ranking, a training loss) come as
one row per (arm, seed), with or without an ``item`` column: then only seeds are resampled.
Such intervals are less informative: they reflect seed-to-seed variation only (not the
sampling of the test set, which is fixed across seeds), and with a handful of seeds the
percentile bootstrap is coarse (few distinct values) and tends to run narrow. Give per-item
scores whenever the metric allows.

Minimum detectable effect: ``mde = (z_{1 - alpha/2} + z_{POWER}) * SE``, alpha =
1 - CONFIDENCE, POWER = 0.80, SE the standard deviation of the bootstrap distribution: the
smallest true effect this trial would resolve 80% of the time. Reported for every testable
claim; it is what an inconclusive verdict means ("no effect larger than mde was missed").

Claims about every one of several comparisons ("beats every baseline", "for every method",
"little impact across the grid") are judged on the extreme one by mean: the weakest gap, the
largest difference. Picking the extreme of K noisy gaps biases it: with no true gap at all, one
of K independent 90 % intervals lies wholly below zero in 1 - 0.95^K of runs (a third at K = 8).
``Claim.comparisons`` = K (how many comparisons the judged pair was chosen from) makes the
interval simultaneous over them (Bonferroni): level 1 - (1 - CONFIDENCE) / K, and the MDE at that
alpha, so choosing the worst gap does not by itself decide the verdict. K = 1 (the default) is a
single planned comparison.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import norm

PAPERS = ("A", "B", "C", "D")
CONFIDENCE = 0.90  # the workbook's one confidence level for every claim interval
POWER = 0.80  # power of the minimum detectable effect
N_RESAMPLES = 2000
VERDICTS = ("supported", "contradicted", "inconclusive", "untestable", "structural")
KINDS = ("direction", "ordering", "equivalence", "trend", "untestable", "structural")
TESTABLE = ("direction", "ordering", "equivalence", "trend")
TABLE_COLUMNS = ("paper", "claim_id", "claim", "kind", "estimate", "ci_low", "ci_high", "mde",
                 "paper_effect", "verdict", "evidence", "notebook")
_MDE_Z = float(norm.ppf(1 - (1 - CONFIDENCE) / 2) + norm.ppf(POWER))  # 1.645 + 0.842
_CHUNK_CELLS = 2_000_000  # resamples x items drawn at once (memory bound)


@dataclass(frozen=True)
class Claim:
    """One paper claim. ``arms`` are method names in the claimed order (winner first).

    ``margin`` (equivalence only, > 0) is the largest difference still called "no effect",
    in the metric's unit; ``paper_effect`` is the paper's own effect in the same unit and
    orientation as the estimate; ``reason`` is required for untestable/structural claims;
    ``alternative`` is "greater" (A above B, the metric rising) or "less"; ``settings`` are
    the trend's setting values, one per arm; ``comparisons`` (>= 1) is how many comparisons the
    judged arms were chosen from as the extreme by mean (the interval is then simultaneous over
    them: see the module docstring).
    """

    paper: str
    claim_id: str
    claim: str
    kind: str
    arms: tuple[str, ...] = ()
    margin: float | None = None
    paper_effect: float | None = None
    reason: str = ""
    alternative: str = "greater"
    settings: tuple[float, ...] | None = None
    comparisons: int = 1

    def __post_init__(self) -> None:
        where = f"claim {self.claim_id!r}"
        object.__setattr__(self, "arms", tuple(self.arms))
        if isinstance(self.comparisons, bool) or not float(self.comparisons).is_integer() or self.comparisons < 1:
            raise ValueError(f"{where}: comparisons must be an integer >= 1, got {self.comparisons!r}")
        object.__setattr__(self, "comparisons", int(self.comparisons))
        if self.paper not in PAPERS:
            raise ValueError(f"{where}: paper must be one of {PAPERS}, got {self.paper!r}")
        if self.kind not in KINDS:
            raise ValueError(f"{where}: kind must be one of {KINDS}, got {self.kind!r}")
        if self.alternative not in ("greater", "less"):
            raise ValueError(f"{where}: alternative must be 'greater' or 'less', got {self.alternative!r}")
        if self.kind in ("untestable", "structural"):
            if not str(self.reason).strip():
                raise ValueError(f"{where}: a {self.kind} claim needs a one-sentence reason")
            return
        need = 2 if self.kind in ("direction", "equivalence") else None
        if (need and len(self.arms) != need) or len(self.arms) < 2:
            raise ValueError(f"{where}: a {self.kind} claim needs {need or 'at least 2'} arms, "
                             f"got {list(self.arms)}")
        if len(set(self.arms)) != len(self.arms):
            raise ValueError(f"{where}: arms repeat: {list(self.arms)}")
        if self.kind == "equivalence" and not (self.margin is not None and self.margin > 0):
            raise ValueError(f"{where}: an equivalence claim needs a margin > 0, got {self.margin!r}")
        if self.settings is not None:
            if self.kind != "trend":
                raise ValueError(f"{where}: settings apply to trend claims only")
            x = tuple(float(v) for v in self.settings)
            if len(x) != len(self.arms) or len(set(x)) < 2:
                raise ValueError(f"{where}: settings need one value per arm ({len(self.arms)}), "
                                 f"not all equal; got {list(self.settings)}")
            object.__setattr__(self, "settings", x)


@dataclass(frozen=True)
class Judgement:
    """A judged claim: the verdict, its estimate and CONFIDENCE interval, the MDE, evidence.

    Untestable/structural claims carry ``reason`` (also the evidence) and NaN statistics.
    ``level`` is "item" (two-level bootstrap), "seed" (per-seed aggregates) or "".
    """

    claim: Claim
    kind: str
    verdict: str
    estimate: float = math.nan
    ci_low: float = math.nan
    ci_high: float = math.nan
    mde: float = math.nan
    evidence: str = ""
    reason: str = ""
    n_seeds: int = 0
    n_items: int = 0
    level: str = ""
    pairs: tuple[Judgement, ...] = ()

    def row(self, notebook: str = "") -> dict[str, Any]:
        """This judgement as one row of :func:`claims_table` (keys :data:`TABLE_COLUMNS`)."""
        c = self.claim
        pe = math.nan if c.paper_effect is None else float(c.paper_effect)
        return {"paper": c.paper, "claim_id": c.claim_id, "claim": c.claim, "kind": self.kind,
                "estimate": self.estimate, "ci_low": self.ci_low, "ci_high": self.ci_high,
                "mde": self.mde, "paper_effect": pe, "verdict": self.verdict,
                "evidence": self.evidence, "notebook": notebook}


@dataclass(frozen=True)
class ScoreGrid:
    """Scores of a claim's arms as an array (arm, seed, item); ``level`` "item" or "seed"."""

    values: np.ndarray
    arms: tuple[str, ...]
    level: str

    @property
    def n_seeds(self) -> int:
        return self.values.shape[1]

    @property
    def n_items(self) -> int:
        return self.values.shape[2]


def _examples(index: pd.Index, n: int = 3) -> str:
    return ", ".join(map(str, list(index[:n]))) + (" ..." if len(index) > n else "")


def score_grid(data: pd.DataFrame, arms: Sequence[str], claim_id: str = "?") -> ScoreGrid:
    """Check and reshape tidy rows into a (arm, seed, item) array for a paired comparison.

    Raises ValueError (naming ``claim_id``) when a column or an arm is missing, values are
    not finite, rows repeat, or the arms were not run on the same seeds and items.
    With one row per (arm, seed), or no ``item`` column, the rows are per-seed aggregates
    (per-fold values of one seed are averaged) and the grid has one item.
    """
    where = f"claim {claim_id!r}"
    arms = tuple(arms)
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"{where}: data must be a pandas DataFrame, got {type(data).__name__}")
    arm_col = next((c for c in ("method", "arm") if c in data.columns), None)
    missing = [c for c in ("seed", "value") if c not in data.columns]
    if arm_col is None or missing:
        need = (["method (or arm)"] if arm_col is None else []) + missing
        raise ValueError(f"{where}: data lacks column(s) {need}; it has {list(data.columns)}")
    present = set(data[arm_col].unique())
    absent = [a for a in arms if a not in present]
    if absent:
        raise ValueError(f"{where}: data has no rows for arm(s) {absent} "
                         f"(column {arm_col!r} holds {sorted(map(str, present))})")
    keys = [c for c in ("fold", "item") if c in data.columns]
    sub = data.loc[data[arm_col].isin(arms), [arm_col, "seed", *keys, "value"]]
    values = pd.to_numeric(sub["value"], errors="coerce").astype(float)
    if not np.isfinite(values.to_numpy()).all():
        raise ValueError(f"{where}: column 'value' has missing or non-finite entries for arms {list(arms)}")
    sub = sub.assign(value=values)
    dup = sub.duplicated([arm_col, "seed", *keys])
    if dup.any():
        first = sub.loc[dup, [arm_col, "seed", *keys]].iloc[0].to_dict()
        raise ValueError(f"{where}: {int(dup.sum())} repeated rows for one ({arm_col}, seed"
                         f"{''.join(', ' + k for k in keys)}), e.g. {first}")
    seeds = {a: set(sub.loc[sub[arm_col] == a, "seed"]) for a in arms}
    ref = seeds[arms[0]]
    for a in arms[1:]:
        if seeds[a] != ref:
            raise ValueError(
                f"{where}: arms {arms[0]!r} and {a!r} were not run on the same seeds (only "
                f"{arms[0]!r}: {sorted(ref - seeds[a])}, only {a!r}: {sorted(seeds[a] - ref)})")
    aggregated = "item" not in keys or bool((sub.groupby([arm_col, "seed"]).size() == 1).all())
    unit = [k for k in keys if not (aggregated and k == "item")]
    wide = sub.set_index(["seed", *unit, arm_col])["value"].unstack(arm_col)[list(arms)].sort_index()
    for a in arms:
        lack = wide.index[wide[a].isna().to_numpy()]
        if len(lack):
            raise ValueError(
                f"{where}: items do not match between paired arms: arm {a!r} lacks {len(lack)} "
                f"(seed, {', '.join(unit)}) rows the other arms have, e.g. {_examples(lack)}")
    if aggregated:
        per_seed = wide.groupby(level="seed").mean()
        return ScoreGrid(per_seed.to_numpy(float).T[:, :, None], arms, "seed")
    n_seeds = wide.index.get_level_values("seed").nunique()
    items = wide.index.droplevel("seed").unique()
    if len(wide) != n_seeds * len(items):
        counts = wide.groupby(level="seed").size()
        raise ValueError(
            f"{where}: seeds were scored on different items ({dict(counts)} items per seed, "
            f"{len(items)} in all); the two-level bootstrap needs every seed scored on the same "
            "items (or give one aggregated row per seed)")
    vals = wide.to_numpy(float).T.reshape(len(arms), n_seeds, len(items))
    return ScoreGrid(vals, arms, "item")


def resample_indices(n: int, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """(n_resamples, n) indices in [0, n), drawn uniformly WITH replacement."""
    return rng.integers(0, n, size=(n_resamples, n))


def _counts(idx: np.ndarray, n: int) -> np.ndarray:
    """How often each of 0..n-1 occurs in each row of ``idx``: (rows, n) floats."""
    r = idx.shape[0]
    flat = (idx + n * np.arange(r)[:, None]).ravel()
    return np.bincount(flat, minlength=r * n).reshape(r, n).astype(float)


def resample_means(values: np.ndarray, n_resamples: int = N_RESAMPLES, seed: int = 0) -> np.ndarray:
    """Two-level bootstrap of per-arm means: (n_resamples, n_arms).

    ``values`` is (arm, seed, item). Each resample draws seeds and items with replacement,
    the same draws for every arm, and averages each arm over the drawn (seed, item) cells:
    ``c_seed @ values[arm] @ c_item / (n_seeds * n_items)`` with the draws' count vectors.
    """
    values = np.asarray(values, dtype=float)
    if values.ndim != 3 or values.size == 0:
        raise ValueError(f"values must be a non-empty (arm, seed, item) array, got shape {values.shape}")
    if not isinstance(n_resamples, (int, np.integer)) or n_resamples < 2:
        raise ValueError(f"n_resamples must be an integer >= 2, got {n_resamples!r}")
    n_arms, n_s, n_i = values.shape
    if n_s * n_i < 2:
        raise ValueError("one seed and one item: nothing to resample (give per-item scores or more seeds)")
    rng = np.random.default_rng(seed)
    c_seed = _counts(resample_indices(n_s, n_resamples, rng), n_s)
    out = np.empty((n_resamples, n_arms))
    step = max(1, _CHUNK_CELLS // n_i)
    for start in range(0, n_resamples, step):  # chunks bound memory; each is vectorised
        stop = min(start + step, n_resamples)
        c_item = _counts(resample_indices(n_i, stop - start, rng), n_i)
        for a in range(n_arms):
            out[start:stop, a] = ((c_seed[start:stop] @ values[a]) * c_item).sum(axis=1)
    return out / (n_s * n_i)


def minimum_detectable_effect(se: float, comparisons: int = 1) -> float:
    """(z_{1-alpha/2} + z_POWER) * se, alpha = (1 - CONFIDENCE) / comparisons: 2.49 se at 0.90 and 0.80
    for one comparison (Bonferroni over ``comparisons`` otherwise)."""
    if comparisons == 1:
        return _MDE_Z * float(se)
    alpha = (1 - CONFIDENCE) / comparisons
    return float(norm.ppf(1 - alpha / 2) + norm.ppf(POWER)) * float(se)


def _interval(draws: np.ndarray, comparisons: int = 1) -> tuple[float, float, float]:
    tail = (1 - CONFIDENCE) / 2 / comparisons
    lo, hi = np.quantile(draws, [tail, 1 - tail])
    return float(lo), float(hi), minimum_detectable_effect(np.std(draws, ddof=1), comparisons)


def _identical_arms(claim: Claim, grid: ScoreGrid) -> tuple[str, str] | None:
    """The first pair of arms the claim compares whose scores are equal everywhere (a comparison
    with no contrast: its interval is [0, 0] and its MDE 0, which says nothing), else None.
    A direction compares arms 0 and 1, an ordering each adjacent pair, a trend every arm with the
    first. Equivalence claims are not checked: identical scores are the strongest evidence of "no
    difference" there."""
    v = grid.values
    if claim.kind == "equivalence":
        return None
    if claim.kind == "trend":
        pairs = [(0, j) for j in range(1, len(claim.arms))]
        return (claim.arms[0], claim.arms[-1]) if all(np.array_equal(v[i], v[j]) for i, j in pairs) else None
    pairs = [(i, i + 1) for i in range(len(claim.arms) - 1)] if claim.kind == "ordering" else [(0, 1)]
    for i, j in pairs:
        if np.array_equal(v[i], v[j]):
            return claim.arms[i], claim.arms[j]
    return None


def _direction_verdict(lo: float, hi: float) -> str:
    return "supported" if lo > 0 else "contradicted" if hi < 0 else "inconclusive"


def _scope(grid: ScoreGrid, n_resamples: int, comparisons: int = 1) -> str:
    pct = f"{CONFIDENCE:.0%}"
    if comparisons > 1:
        pct += f" simultaneous over {comparisons} comparisons (Bonferroni: {1 - (1 - CONFIDENCE) / comparisons:.2%} each)"
    if grid.level == "seed":
        return (f"{pct} bootstrap over {grid.n_seeds} seeds of per-seed aggregates "
                f"({n_resamples} resamples; items not resampled: less informative)")
    return (f"{pct} two-level bootstrap, {grid.n_seeds} seeds x {grid.n_items} items "
            f"({n_resamples} resamples)")


def _num(x: float) -> str:
    return f"{x:+.4g}"


def judge(claim: Claim, data: pd.DataFrame | None = None, *, n_resamples: int = N_RESAMPLES,
          seed: int = 0) -> Judgement:
    """Judge ``claim`` on tidy per-item (or per-seed) scores; see the module docstring.

    Untestable and structural claims need no data. ``seed`` fixes the resampling.
    """
    if not isinstance(claim, Claim):
        raise TypeError(f"judge needs a Claim, got {type(claim).__name__}")
    if claim.kind in ("untestable", "structural"):
        return Judgement(claim, claim.kind, claim.kind, evidence=claim.reason, reason=claim.reason)
    if data is None:
        raise ValueError(f"claim {claim.claim_id!r}: a {claim.kind} claim needs data")
    grid = score_grid(data, claim.arms, claim.claim_id)
    try:
        draws = resample_means(grid.values, n_resamples, seed)
    except ValueError as exc:
        raise ValueError(f"claim {claim.claim_id!r}: {exc}") from exc
    same = _identical_arms(claim, grid)
    if same is not None:
        a, b = same
        reason = (f"no contrast: {a} and {b} scored identically on every seed and item "
                  f"({grid.n_seeds} seeds x {grid.n_items} items), so the claimed difference was switched off "
                  f"in this run (e.g. a setting selected on validation removed it)")
        return Judgement(claim, claim.kind, "untestable", evidence=reason, reason=reason, n_seeds=grid.n_seeds,
                         n_items=grid.n_items, level=grid.level)
    point = grid.values.mean(axis=(1, 2))
    sign = 1.0 if claim.alternative == "greater" else -1.0
    base = dict(n_seeds=grid.n_seeds, n_items=grid.n_items, level=grid.level)
    k = claim.comparisons
    scope = _scope(grid, n_resamples, k)
    op = ">" if sign > 0 else "<"

    def contrast(i: int, j: int) -> Judgement:
        est = sign * float(point[i] - point[j])
        lo, hi, mde = _interval(sign * (draws[:, i] - draws[:, j]), k)
        a, b = claim.arms[i], claim.arms[j]
        label = f"{a} - {b}" if sign > 0 else f"{b} - {a}"
        ev = f"{label} = {_num(est)}, CI [{lo:.4g}, {hi:.4g}], MDE {mde:.3g}; {scope}"
        return Judgement(claim, claim.kind, _direction_verdict(lo, hi), est, lo, hi, mde, ev, **base)

    if claim.kind == "direction":
        return contrast(0, 1)
    if claim.kind == "ordering":
        pairs = tuple(contrast(i, i + 1) for i in range(len(claim.arms) - 1))
        rank = {"contradicted": 0, "inconclusive": 1, "supported": 2}
        weakest = min(range(len(pairs)), key=lambda k: (rank[pairs[k].verdict], pairs[k].ci_low))
        w = pairs[weakest]
        verdict = ("contradicted" if any(p.verdict == "contradicted" for p in pairs)
                   else "supported" if all(p.verdict == "supported" for p in pairs) else "inconclusive")
        links = "; ".join(f"{claim.arms[k]} {op} {claim.arms[k + 1]}: {_num(p.estimate)} "
                          f"[{p.ci_low:.4g}, {p.ci_high:.4g}] {p.verdict}" for k, p in enumerate(pairs))
        ev = (f"weakest link {claim.arms[weakest]} {op} {claim.arms[weakest + 1]}: "
              f"{_num(w.estimate)}, CI [{w.ci_low:.4g}, {w.ci_high:.4g}], MDE {w.mde:.3g} "
              f"(pairs: {links}); {scope}")
        return Judgement(claim, claim.kind, verdict, w.estimate, w.ci_low, w.ci_high, w.mde, ev,
                         pairs=pairs, **base)
    if claim.kind == "equivalence":
        m = float(claim.margin)  # type: ignore[arg-type]
        est = float(point[0] - point[1])
        lo, hi, mde = _interval(draws[:, 0] - draws[:, 1], k)
        verdict = ("supported" if -m < lo and hi < m
                   else "contradicted" if lo > m or hi < -m else "inconclusive")
        ev = (f"{claim.arms[0]} - {claim.arms[1]} = {_num(est)}, CI [{lo:.4g}, {hi:.4g}] vs "
              f"margin +/-{m:.4g} (TOST), MDE {mde:.3g}; {scope}")
        return Judgement(claim, claim.kind, verdict, est, lo, hi, mde, ev, **base)
    # trend: fitted change over the setting range, from the least-squares slope of means
    x = np.asarray(claim.settings if claim.settings is not None else range(len(claim.arms)), float)
    xc = x - x.mean()
    w = sign * xc / (xc @ xc) * (x.max() - x.min())
    est = float(point @ w)
    lo, hi, mde = _interval(draws @ w, k)
    word = "rise" if sign > 0 else "fall"
    ev = (f"fitted {word} from {claim.arms[0]} to {claim.arms[-1]} (slope x range, settings "
          f"{x.tolist()}) = {_num(est)}, CI [{lo:.4g}, {hi:.4g}], MDE {mde:.3g}; {scope}")
    return Judgement(claim, claim.kind, _direction_verdict(lo, hi), est, lo, hi, mde, ev, **base)


def claims_table(judgements: Iterable[Judgement], notebook: str = "") -> pd.DataFrame:
    """Judged claims as a frame with exactly the columns :data:`TABLE_COLUMNS`."""
    rows = [j.row(notebook) for j in judgements]
    keys = [(r["paper"], r["claim_id"]) for r in rows]
    if len(keys) != len(set(keys)):
        raise ValueError(f"duplicate (paper, claim_id) in {keys}")
    return pd.DataFrame(rows, columns=list(TABLE_COLUMNS))


def grouped_kfold(groups: Sequence[Any] | np.ndarray, k: int = 5,
                  seed: int = 0) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield k (train_idx, test_idx) splits; all members of a group stay on one side.

    Every group (e.g. all drawings of one concept) is tested exactly once. The groups are
    relabelled by a permutation drawn from ``seed`` before scikit-learn's GroupKFold (which
    balances fold sizes), so ``seed`` decides how equal-sized groups are dealt out; the same
    seed gives the same folds on every scikit-learn version. Raises ValueError (eagerly) on
    k < 2 or fewer groups than folds.
    """
    from sklearn.model_selection import GroupKFold

    g = np.asarray(groups)
    if g.ndim != 1 or g.size == 0:
        raise ValueError(f"groups must be a non-empty 1-d sequence, got shape {g.shape}")
    if not isinstance(k, (int, np.integer)) or k < 2:
        raise ValueError(f"k must be an integer >= 2, got {k!r}")
    _, codes = np.unique(g, return_inverse=True)
    n_groups = int(codes.max()) + 1
    if n_groups < k:
        raise ValueError(f"{n_groups} groups cannot fill k={k} folds")
    relabelled = np.random.default_rng(seed).permutation(n_groups)[codes.ravel()]
    splits = GroupKFold(n_splits=k).split(np.zeros((g.size, 1)), groups=relabelled)
    return ((np.asarray(tr), np.asarray(te)) for tr, te in splits)


# --- a notebook's claims: judged, printed, recorded with their evidence --------------------

LEDGER_COLUMNS = (*TABLE_COLUMNS, "arms", "margin", "alternative", "settings", "comparisons", "profile",
                  "commit", "versions", "device")
EVIDENCE_COLUMNS = ("claim_id", "method", "seed", "fold", "item", "value")


def _json_or_empty(v: Any) -> str:
    import json

    return "" if v is None or v == () else json.dumps(list(v))


class Ledger:
    """One notebook's claims: ``judge`` each against its tidy scores, ``show`` them, ``record``.

    ``record`` writes the verdict rows (:data:`LEDGER_COLUMNS`: the table columns, the claim's
    design - arms, margin, alternative, settings - and the run's provenance) into
    ``results/claims.csv``, replacing this notebook's earlier rows, and the scores each
    verdict was computed from into ``results/evidence/<notebook>.csv.gz``, so that every
    verdict can be recomputed from ``results/`` alone (``tests/test_claims_recompute.py``).
    Only the committed run (profile ``default``, the notebook's own parameters:
    :func:`clickvision.provenance.is_committed_run`) writes there; any other run writes both
    files under ``results/runs/claims/`` and says so.
    """

    def __init__(self, notebook: str, params: dict[str, Any] | None = None, *,
                 n_resamples: int = N_RESAMPLES, seed: int = 0) -> None:
        self.notebook, self.params = notebook, dict(params or {})
        self.n_resamples, self.seed = n_resamples, seed
        self.judgements: list[Judgement] = []
        self._evidence: list[pd.DataFrame] = []

    def judge(self, claim: Claim, data: pd.DataFrame | None = None) -> Judgement:
        """Judge ``claim`` on ``data`` (see :func:`judge`), keep the judgement and its scores."""
        if any(j.claim.claim_id == claim.claim_id for j in self.judgements):
            raise ValueError(f"{self.notebook}: claim {claim.claim_id!r} judged twice")
        j = judge(claim, data, n_resamples=self.n_resamples, seed=self.seed)
        self.judgements.append(j)
        if data is not None and claim.kind in TESTABLE:
            arm_col = "method" if "method" in data.columns else "arm"
            sub = data[data[arm_col].isin(claim.arms)].rename(columns={arm_col: "method"})
            sub = sub.assign(claim_id=claim.claim_id)
            for col in ("fold", "item"):
                if col not in sub.columns:
                    sub = sub.assign(**{col: ""})
            self._evidence.append(sub[list(EVIDENCE_COLUMNS)])
        return j

    def table(self) -> pd.DataFrame:
        """The judged claims as :data:`LEDGER_COLUMNS` rows."""
        from . import provenance

        stamp = provenance.stamp()
        rows = []
        for j in self.judgements:
            c = j.claim
            rows.append({**j.row(self.notebook), "arms": _json_or_empty(c.arms),
                         "margin": math.nan if c.margin is None else float(c.margin),
                         "alternative": c.alternative, "settings": _json_or_empty(c.settings),
                         "comparisons": c.comparisons,
                         "profile": self.params.get("profile", ""), **stamp})
        return pd.DataFrame(rows, columns=list(LEDGER_COLUMNS))

    def show(self, width: int = 110) -> None:
        """Each verdict, the claim and its evidence: printed text (trained numbers inside)."""
        import textwrap

        for j in self.judgements:
            print(f"[{j.verdict}] {j.claim.claim_id}: {j.claim.claim}")
            print(textwrap.fill(j.evidence, width, initial_indent="    ", subsequent_indent="    "))

    def counts(self) -> pd.Series:
        """Claims per verdict (every verdict listed, zeros included)."""
        v = pd.Series([j.verdict for j in self.judgements], dtype=object)
        return v.value_counts().reindex(list(VERDICTS), fill_value=0)

    def record(self) -> pd.DataFrame:
        """Write the verdicts and their evidence (see the class doc); return the rows written."""
        from . import paths, provenance, results
        from .io import atomic_path

        new = self.table()
        evidence = (pd.concat(self._evidence, ignore_index=True) if self._evidence
                    else pd.DataFrame(columns=list(EVIDENCE_COLUMNS)))
        if provenance.is_committed_run(self.notebook, self.params):
            claims_path = paths.RESULTS_DIR / "claims.csv"
            evidence_path = paths.RESULTS_DIR / "evidence" / f"{self.notebook}.csv.gz"
        else:
            rid = results.run_id(self.params)
            base = paths.RESULTS_DIR / "runs" / "claims"
            claims_path, evidence_path = base / f"{self.notebook}.{rid}.csv", base / f"{self.notebook}.{rid}.evidence.csv.gz"
            print(f"(not the committed run - profile {self.params.get('profile')!r} or other parameters: "
                  f"verdicts written under results/runs/claims/, results/claims.csv untouched)")
        paths.ensure_dir(claims_path.parent)
        paths.ensure_dir(evidence_path.parent)
        results.replace_rows(claims_path, new, "notebook", {self.notebook}, read=load_ledger,
                             sort_by=["paper", "notebook", "claim_id"])
        with atomic_path(evidence_path) as tmp:
            evidence.to_csv(tmp, index=False, compression={"method": "gzip", "mtime": 0})
        return new


def load_ledger(path: Any = None) -> pd.DataFrame:
    """``results/claims.csv`` (or ``path``) as a frame; an empty one with the columns when absent."""
    from pathlib import Path

    from . import paths

    path = Path(path) if path is not None else paths.RESULTS_DIR / "claims.csv"
    if not path.exists():
        return pd.DataFrame(columns=list(LEDGER_COLUMNS))
    t = pd.read_csv(path, keep_default_na=False, na_values=[""])
    if "verdict" not in t.columns:
        raise ValueError(f"{path}: no 'verdict' column (an old claims ledger with 'held'? "
                         "re-run the notebooks that write it)")
    bad = sorted(set(t["verdict"]) - set(VERDICTS))
    if bad:
        raise ValueError(f"{path}: unknown verdict(s) {bad}; allowed: {VERDICTS}")
    return t


def load_evidence(notebook: str) -> pd.DataFrame:
    """The scores behind ``notebook``'s committed verdicts (``results/evidence/<notebook>.csv.gz``)."""
    from . import paths

    path = paths.RESULTS_DIR / "evidence" / f"{notebook}.csv.gz"
    if not path.exists():
        return pd.DataFrame(columns=list(EVIDENCE_COLUMNS))
    return pd.read_csv(path, keep_default_na=False, na_values=[""])


def rejudge(row: Mapping[str, Any], evidence: pd.DataFrame, *, n_resamples: int = N_RESAMPLES,
            seed: int = 0) -> Judgement:
    """Judge a ``claims.csv`` row again from its recorded evidence (the recomputation test)."""
    import json

    def opt(v):
        return None if v is None or (isinstance(v, float) and math.isnan(v)) or v == "" else v

    arms = tuple(json.loads(row["arms"])) if opt(row.get("arms")) else ()
    settings = tuple(json.loads(row["settings"])) if opt(row.get("settings")) else None
    claim = Claim(paper=row["paper"], claim_id=row["claim_id"], claim=row["claim"], kind=row["kind"],
                  arms=arms, margin=opt(row.get("margin")), paper_effect=opt(row.get("paper_effect")),
                  reason=row["evidence"] if row["kind"] in ("untestable", "structural") else "",
                  alternative=opt(row.get("alternative")) or "greater", settings=settings,
                  comparisons=int(opt(row.get("comparisons")) or 1))
    data = None
    if claim.kind in TESTABLE:
        data = evidence[evidence["claim_id"] == claim.claim_id].drop(columns="claim_id")
        data = data.drop(columns=[c for c in ("fold", "item")
                                  if c in data and (data[c].isna() | (data[c].astype(str) == "")).all()])
    return judge(claim, data, n_resamples=n_resamples, seed=seed)
