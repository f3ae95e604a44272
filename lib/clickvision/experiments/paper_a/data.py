"""Paper A's data on the embedded emoji: source (Google, SIMULATED clicks) and target (Twitter).

* **Source domain** = the Google emoji (``cv.data.load_emoji()`` rows with domain
  ``google``) with the **simulated** click log ``emoji-google`` (keys ``google:<code>``;
  its queries come from the training split's text only). Its ground-truth click feature
  ``v`` is the click TF-IDF of eq. (1) over the vocabulary of the K words with most clicks
  on training images (:mod:`clickvision.click.features`).
* **Target domain** = the Twitter emoji: the same 40 Unicode-subgroup classes, no clicks.
* Splits are the data set's own (grouped by concept: no emoji's twin crosses splits).
* Backbone features: ``extract_features(emoji, 128 px, 'pooled' | 'map')`` on the full
  default emoji set (the cache ``make features`` fills), then rows indexed.

The simulated clicks carry the label, as real queries do (a query names the breed): the
ground-truth click feature is a near-ceiling for recognition; see notebook A.01.
The word click matrix is cached on disk (keyed by the log's sha256 and the parameters),
so notebooks after A.01 do not reload WordNet.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ... import paths
from ...click import build as click_build
from ...click.features import ClickTfidf, WordClickMatrix, click_tfidf, reselect_vocabulary, word_click_matrix
from ...data.manifest import sha256_file
from ...io import atomic_path, file_lock
from ...threads import limited

SOURCE_VENDOR, TARGET_VENDOR = "google", "twitter"
LOG_NAME = "emoji-google"
IMAGE_SIZE = 128


#: paper A's name for :func:`clickvision.threads.limited` (torch and BLAS on ``n`` threads in a block)
torch_threads = limited


@dataclass
class DomainData:
    """One domain's rows: items, labels, split, backbone features and (source) click features."""

    name: str
    items: pd.DataFrame
    y: np.ndarray
    split: np.ndarray
    phi: np.ndarray  # pooled backbone vector, float32 (n, C)
    omega: np.ndarray | None  # last conv map, float16 (n, C, h, w)
    clicks: np.ndarray | None = None  # ground-truth click feature v, float32 (n, K)
    valid: np.ndarray | None = None  # v is not a zero row
    noisy: np.ndarray | None = None  # SIMULATED label noise: clicks of another class

    def rows(self, split: str) -> np.ndarray:
        """Row indices of ``split`` ('train' / 'val' / 'test')."""
        out = np.flatnonzero(self.split == split)
        if not len(out):
            raise ValueError(f"domain {self.name!r} has no rows in split {split!r}")
        return out

    def subset(self, rows: np.ndarray) -> "DomainData":
        pick = lambda a: None if a is None else a[rows]  # noqa: E731
        return DomainData(self.name, self.items.iloc[rows].reset_index(drop=True), self.y[rows], self.split[rows],
                          self.phi[rows], pick(self.omega), pick(self.clicks), pick(self.valid), pick(self.noisy))


@dataclass
class PaperAData:
    """Source and target domains with the click vocabulary and the eq. (1) features."""

    source: DomainData
    target: DomainData
    classes: list[str]
    vocabulary: list[str]
    word_clicks: WordClickMatrix
    tfidf: ClickTfidf
    meta: dict = field(default_factory=dict)

    @property
    def k(self) -> int:
        return len(self.vocabulary)

    @property
    def feature_dim(self) -> int:
        return int(self.source.phi.shape[1])

    @property
    def source_columns(self) -> np.ndarray | None:
        """Class columns of the source softmax (eq. 16); ``None``: every class (eq. 15)."""
        cols = self.meta.get("source_columns")
        return None if cols is None else np.asarray(cols, dtype=np.int64)

    @property
    def target_columns(self) -> np.ndarray | None:
        """Class columns of the target softmax (eq. 16); ``None``: every class (eq. 15)."""
        cols = self.meta.get("target_columns")
        return None if cols is None else np.asarray(cols, dtype=np.int64)

    def domains(self) -> tuple[tuple[str, DomainData, np.ndarray | None], ...]:
        """``("s", source, source_columns)`` and ``("t", target, target_columns)``: the per-domain loop."""
        return (("s", self.source, self.source_columns), ("t", self.target, self.target_columns))

    @property
    def map_channels(self) -> int | None:
        return None if self.source.omega is None else int(self.source.omega.shape[1])

    def subsample(self, per_split: dict[str, int], seed: int = 0) -> "PaperAData":
        """At most ``per_split[s]`` rows of each split in each domain (a quick run), stratified-ish."""
        rng = np.random.default_rng(seed)

        def cut(d: DomainData) -> DomainData:
            keep = []
            for s in ("train", "val", "test"):
                rows = d.rows(s)
                n = per_split.get(s, len(rows))
                keep.append(np.sort(rng.choice(rows, size=min(n, len(rows)), replace=False)))
            return d.subset(np.concatenate(keep))

        return PaperAData(cut(self.source), cut(self.target), self.classes, self.vocabulary, self.word_clicks,
                          self.tfidf, {**self.meta, "subsample": dict(per_split)})


def reduce_map_channels(data: PaperAData, n_channels: int) -> PaperAData:
    """Project every conv map's channels onto the top ``n_channels`` principal components.

    A fixed 1x1 projection (centred PCA over the channel vectors of the source training
    maps, every position), shared by both domains: the CONV transformation E1 then costs
    ``n_channels / C`` as much on the CPU, its filters restricted to the principal subspace.
    ``n_channels = 0`` returns ``data`` unchanged (the full map).
    """
    if n_channels == 0:
        return data
    with torch_threads(1):
        return _reduce_map_channels(data, n_channels)


def _reduce_map_channels(data: PaperAData, n_channels: int) -> PaperAData:
    src = data.source
    if src.omega is None:
        raise ValueError("reduce_map_channels: the data has no conv maps (load with with_map=True)")
    c = src.omega.shape[1]
    if not 0 < n_channels <= c:
        raise ValueError(f"reduce_map_channels: n_channels must be in 1..{c} (or 0), got {n_channels}")
    import torch

    train_maps = np.ascontiguousarray(src.omega[src.rows("train")])
    digest = hashlib.sha256(train_maps.tobytes() + f"|{n_channels}|v1".encode()).hexdigest()[:16]
    path = paths.CACHE_DIR / "paper_a" / f"map-pca-{digest}.npz"
    with file_lock(path):
        if path.exists():
            z = np.load(path)
            mean, basis, kept = torch.from_numpy(z["mean"]), torch.from_numpy(z["basis"]), float(z["kept"])
        else:
            vectors = torch.from_numpy(train_maps).float().permute(0, 2, 3, 1).reshape(-1, c)
            mean = vectors.double().mean(dim=0).float()
            centred = vectors - mean
            eigval, eigvec = torch.linalg.eigh((centred.T @ centred).double())  # ascending eigenvalues
            basis = eigvec.flip(1)[:, :n_channels].float().contiguous()
            kept = float(eigval.flip(0)[:n_channels].sum() / eigval.sum())
            with atomic_path(path, suffix=".npz") as tmp:
                with open(tmp, "wb") as fh:
                    np.savez(fh, mean=mean.numpy(), basis=basis.numpy(), kept=np.float64(kept))

    def project(d: DomainData) -> DomainData:
        om = torch.from_numpy(d.omega).float().permute(0, 2, 3, 1) - mean
        red = (om @ basis).permute(0, 3, 1, 2).numpy()
        return DomainData(d.name, d.items, d.y, d.split, d.phi, np.ascontiguousarray(red), d.clicks, d.valid,
                          d.noisy)

    return PaperAData(project(src), project(data.target), data.classes, data.vocabulary, data.word_clicks,
                      data.tfidf, {**data.meta, "map_channels": n_channels, "map_variance_kept": round(kept, 4)})


def _cache_file(log_path: Path, keys: list[str], train_keys: list[str], k: int) -> Path:
    blob = json.dumps({"log": sha256_file(log_path), "keys": hashlib.sha256("\0".join(keys).encode()).hexdigest(),
                       "train": hashlib.sha256("\0".join(train_keys).encode()).hexdigest(), "k": k,
                       "version": 1}, sort_keys=True)
    return paths.CACHE_DIR / "paper_a" / f"word-clicks-{hashlib.sha256(blob.encode()).hexdigest()[:16]}.npz"


def cached_word_clicks(log_path: Path, keys: list[str], train_keys: list[str], k: int = 1000) -> WordClickMatrix:
    """:func:`word_click_matrix` of a log, cached under ``data/cache/paper_a`` (atomic, locked)."""
    path = _cache_file(Path(log_path), keys, train_keys, k)
    with file_lock(path):
        if path.exists():
            z = np.load(path, allow_pickle=False)
            counts = sp.csr_matrix((z["data"], z["indices"], z["indptr"]), shape=tuple(z["shape"]))
            stats = json.loads(str(z["stats"]))
            return WordClickMatrix(counts, z["keys"].astype(object), z["vocabulary"].tolist(), z["word_clicks"],
                                   z["train"], stats)
        wc = word_click_matrix(log_path, keys=keys, train_keys=train_keys, k=k)
        with atomic_path(path, suffix=".npz") as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, data=wc.counts.data, indices=wc.counts.indices, indptr=wc.counts.indptr,
                         shape=np.array(wc.counts.shape), keys=np.array(wc.keys.tolist(), dtype=str),
                         vocabulary=np.array(wc.vocabulary, dtype=str), word_clicks=wc.word_clicks,
                         train=wc.train, stats=json.dumps(wc.stats))
        return wc


def load_paper_a_data(k: int = 1000, tfidf_variant: str = "paper", with_map: bool = True,
                      image_size: int = IMAGE_SIZE) -> PaperAData:
    """Source (Google + SIMULATED clicks) and target (Twitter) domains of paper A on emoji."""
    from ...data import load_emoji
    from ...features import extract_features

    emoji = load_emoji()
    items = emoji.items
    classes = sorted(items["label"].unique())
    label_id = {c: i for i, c in enumerate(classes)}
    phi_all = extract_features(emoji, image_size=image_size, kind="pooled")
    omega_all = extract_features(emoji, image_size=image_size, kind="map") if with_map else None

    def domain(vendor: str) -> tuple[np.ndarray, pd.DataFrame]:
        rows = np.flatnonzero((items["domain"] == vendor).to_numpy())
        if not len(rows):
            raise ValueError(f"the emoji set has no rows of vendor {vendor!r}")
        return rows, items.iloc[rows].reset_index(drop=True)

    s_rows, s_items = domain(SOURCE_VENDOR)
    t_rows, t_items = domain(TARGET_VENDOR)
    keys = s_items["key"].astype(str).tolist()
    train_keys = s_items.loc[s_items["split"] == "train", "key"].astype(str).tolist()
    wc = cached_word_clicks(click_build.click_log_path(LOG_NAME), keys, train_keys, k)
    tfidf = click_tfidf(wc, variant=tfidf_variant)
    noise = click_build.load_label_noise(LOG_NAME).set_index("key")["noisy"]
    noisy = s_items["key"].map(noise).fillna(False).astype(bool).to_numpy()

    def make(name: str, rows: np.ndarray, frame: pd.DataFrame, clicks=None, valid=None, noisy=None) -> DomainData:
        return DomainData(name, frame, frame["label"].map(label_id).to_numpy(np.int64),
                          frame["split"].astype(str).to_numpy(), phi_all[rows],
                          None if omega_all is None else omega_all[rows], clicks, valid, noisy)

    source = make("source", s_rows, s_items, tfidf.dense(), tfidf.valid, noisy)
    target = make("target", t_rows, t_items)
    meta = {"log": LOG_NAME, "target_vendor": TARGET_VENDOR, "k": wc.k, "tfidf_variant": tfidf_variant,
            "image_size": image_size,
            "zero_rows": tfidf.n_zero_rows, "zero_train_rows": tfidf.n_zero_train_rows, **wc.stats}
    return PaperAData(source, target, classes, list(wc.vocabulary), wc, tfidf, meta)


#: ``k`` large enough for the full word click matrix (every word clicked on a training image).
ALL_WORDS = 10**9


def with_label_sets(data: PaperAData, source_classes, target_classes, k: int | None = None,
                    full: WordClickMatrix | None = None) -> PaperAData:
    """Paper A with separate source and target label sets (eq. 16; Fig. 13, Table IX).

    The source keeps only images of ``source_classes``, the target only images of
    ``target_classes`` (names from ``data.classes``). Classes are re-indexed in
    :class:`~clickvision.losses.unseen.LabelSpaces` union order (target classes first, then
    source-only ones); ``source_columns`` / ``target_columns`` name each domain's softmax
    columns. The click vocabulary is **rebuilt on the kept source training images** (the K
    words with most clicks on them, as eq. 1 asks; docs/READING-NOTES.md Fig. 13) and the eq. (1)
    features recomputed, so a class subset never sees words learnt from classes it lacks.
    ``k``: vocabulary size (default: the current one). ``full``: the source's word click
    matrix over every training-clicked word, row-aligned with ``data.source`` (default:
    :func:`full_word_clicks`, read from the SIMULATED log and cached).
    """
    from ...losses.unseen import LabelSpaces

    known = set(data.classes)
    for name, chosen in (("source_classes", source_classes), ("target_classes", target_classes)):
        unknown = sorted({str(c) for c in chosen} - known)
        if unknown:
            raise ValueError(f"with_label_sets: {name} {unknown[:5]} are not classes of the data "
                             f"({len(data.classes)} classes)")
    spaces = LabelSpaces(tuple(str(c) for c in source_classes), tuple(str(c) for c in target_classes))
    names = np.array(data.classes, dtype=object)

    def rows_of(d: DomainData, chosen: tuple[str, ...], role: str) -> np.ndarray:
        rows = np.flatnonzero(np.isin(names[d.y], chosen))
        missing = sorted(set(chosen) - set(names[d.y[rows]]))
        if missing:
            raise ValueError(f"with_label_sets: {role} classes {missing[:5]} have no {role} images")
        return rows

    s_rows = rows_of(data.source, spaces.source, "source")
    t_rows = rows_of(data.target, spaces.target, "target")
    out = rebuild_source_vocabulary(data, s_rows, k, full)
    source, target = out.source, data.target.subset(t_rows)
    source.y = spaces.encode(names[source.y], "union")
    target.y = spaces.encode(names[target.y], "union")
    meta = {**out.meta, "source_classes": list(spaces.source), "target_classes": list(spaces.target),
            "source_columns": spaces.source_columns.tolist(), "target_columns": spaces.target_columns.tolist()}
    return PaperAData(source, target, list(spaces.union), out.vocabulary, out.word_clicks, out.tfidf, meta)


def rebuild_source_vocabulary(data: PaperAData, rows: np.ndarray, k: int | None = None,
                              full: WordClickMatrix | None = None) -> PaperAData:
    """``data`` with the source cut to ``rows`` and eq. (1) rebuilt on the kept training images.

    The vocabulary becomes the ``k`` words (default: the current K) with most clicks on the
    kept source training images, re-ranked from ``full`` (the source's word click matrix over
    every training-clicked word, row-aligned with ``data.source``; default
    :func:`full_word_clicks`) by :func:`~clickvision.click.features.reselect_vocabulary`;
    idf and zero rows follow. The target is untouched.
    """
    full = full_word_clicks(data) if full is None else full
    if not _row_aligned(full, data.source):
        raise ValueError("rebuild_source_vocabulary: full must be row-aligned with data.source (full_word_clicks)")
    source = data.source.subset(rows)
    wc = reselect_vocabulary(full, rows, int(k or data.k))
    tfidf = click_tfidf(wc, variant=data.tfidf.variant)
    source.clicks, source.valid = tfidf.dense(), tfidf.valid
    meta = {**data.meta, "k": wc.k, "zero_rows": tfidf.n_zero_rows, "zero_train_rows": tfidf.n_zero_train_rows}
    return PaperAData(source, data.target, data.classes, list(wc.vocabulary), wc, tfidf, meta)


def _row_aligned(wc: WordClickMatrix, d: DomainData) -> bool:
    """``wc``'s rows are ``d``'s items, in order."""
    return len(wc.keys) == len(d.items) and np.array_equal(np.asarray(wc.keys, dtype=str),
                                                           d.items["key"].astype(str).to_numpy())


def full_word_clicks(data: PaperAData) -> WordClickMatrix:
    """The source's word click matrix over every word clicked on a training image, row-aligned with it.

    ``data.word_clicks`` itself when it is row-aligned and already keeps every such word;
    otherwise read from the SIMULATED log once and cached.
    """
    wc = data.word_clicks
    if _row_aligned(wc, data.source) and wc.stats.get("train_words", len(wc.vocabulary)) <= len(wc.vocabulary):
        return wc
    items = data.source.items
    return _source_word_clicks(data, items.loc[items["split"] == "train", "key"].astype(str).tolist())


def _source_word_clicks(data: PaperAData, vocabulary_keys: list[str]) -> WordClickMatrix:
    """The source's word click matrix (one row per source image, in order) over every word clicked
    on one of ``vocabulary_keys``' images, read from the SIMULATED log once and cached."""
    keys = data.source.items["key"].astype(str).tolist()
    return cached_word_clicks(click_build.click_log_path(data.meta.get("log", LOG_NAME)), keys, vocabulary_keys, ALL_WORDS)


# --- source and target chosen from the data tour's measured vendor gaps (00.02) -------------------

GAP_EXPERIMENT = "00.02-vendor-gaps"  # results/<this>.csv: 00.02's linear-probe gap per vendor pair
MIN_PAIRED = 150  # a target must share at least this many test concepts with the source


@dataclass(frozen=True)
class DomainChoice:
    """Paper A's source and target vendors and why (:func:`choose_domains`)."""

    source: str
    targets: tuple[str, ...]
    candidates: pd.DataFrame  # every other vendor: gap, gap_lo, gap_hi, n_paired, eligible, rank
    reason: str


def _gap_rows(path: Path, source: str) -> pd.DataFrame:
    """The default-profile rows of ``path`` holding the gap statistics of pairs from ``source``."""
    rows = pd.read_csv(path) if path.exists() else pd.DataFrame(columns=["profile", "metric", "value", "time"])
    if "profile" in rows.columns:
        rows = rows[rows["profile"].astype(str) == "default"]
    metric = rows["metric"].astype(str)
    return rows[metric.str.contains(f" {source}->", regex=False) & metric.str.match(r"^(gap|gap_lo|gap_hi|n_paired) ")]


def choose_domains(source: str = SOURCE_VENDOR, n_targets: int = 1, min_paired: int = MIN_PAIRED,
                   results_dir: Path | None = None) -> DomainChoice:
    """The ``n_targets`` vendors farthest from ``source`` by the gaps 00.02 measured and recorded.

    Reads the latest ``default`` run of ``results/00.02-vendor-gaps.csv`` in ``results_dir`` (default:
    this run's results folder; when that holds no gaps from ``source``, as in a scratch folder of a
    smoke run, the repository's committed ``results/`` and the reason says so) (metrics ``gap``,
    ``gap_lo``, ``gap_hi``, ``n_paired`` of every ``source->vendor`` pair: in-domain minus cross
    accuracy of a linear probe trained on ``source``, with its 90 % interval over the test
    concepts both vendors draw). A vendor is eligible when it shares at least ``min_paired``
    test concepts with the source; eligible vendors are ranked by the LOWER end of the gap's
    interval (a gap measured to be large, not one that may be large), largest first. The source
    itself is not chosen here: it must be a colour vendor with a (SIMULATED) click log, and only
    ``emoji-google``'s is built. Raises ValueError naming the file when it holds no gap rows for
    ``source`` (run 00.02 first) or when fewer than ``n_targets`` vendors are eligible.
    """
    if not isinstance(n_targets, int) or isinstance(n_targets, bool) or n_targets < 1:
        raise ValueError(f"choose_domains: n_targets must be an int >= 1, got {n_targets!r}")
    folders = [Path(paths.RESULTS_DIR if results_dir is None else results_dir)]
    if results_dir is None and folders[0].resolve() != (paths.PROJ_ROOT / "results").resolve():
        folders.append(paths.PROJ_ROOT / "results")  # the committed table, when this run's folder has none
    for path in (f / f"{GAP_EXPERIMENT}.csv" for f in folders):
        mine = _gap_rows(path, source)
        if not mine.empty:
            break
    if mine.empty:
        tried = " or ".join(str(f / f"{GAP_EXPERIMENT}.csv") for f in folders)
        raise ValueError(f"choose_domains: no measured gaps from source {source!r} (metrics 'gap {source}->...') in "
                         f"{tried}; run notebooks/00-workbook/00.02-Data-Tour.ipynb at profile default first")
    if {"run_id", "time"} <= set(mine.columns):  # the latest recorded run only
        mine = mine[mine["run_id"] == mine.sort_values("time", kind="stable")["run_id"].iloc[-1]]
    split = mine["metric"].astype(str).str.extract(r"^(\w+) [^ ]+->(.+)$")
    table = (mine.assign(stat=split[0].to_numpy(), vendor=split[1].to_numpy())
             .pivot_table(index="vendor", columns="stat", values="value", aggfunc="last"))
    need = {"gap", "gap_lo", "gap_hi", "n_paired"}
    if not need <= set(table.columns):
        raise ValueError(f"choose_domains: {path} lacks {sorted(need - set(table.columns))} for source {source!r}")
    table = table.drop(index=[source], errors="ignore")
    table["eligible"] = table["n_paired"] >= min_paired
    table = table.sort_values(["eligible", "gap_lo"], ascending=[False, False])
    table["rank"] = np.where(table["eligible"], np.arange(1, len(table) + 1), 0)
    chosen = tuple(table.index[table["eligible"]][:n_targets])
    if len(chosen) < n_targets:
        raise ValueError(f"choose_domains: only {len(chosen)} vendor(s) share >= {min_paired} test concepts with "
                         f"{source!r} in {path}; asked for n_targets={n_targets}")
    parts = [f"{v} (gap {100 * table.loc[v, 'gap']:.1f} points, 90 % interval [{100 * table.loc[v, 'gap_lo']:.1f}, "
             f"{100 * table.loc[v, 'gap_hi']:.1f}] on {int(table.loc[v, 'n_paired'])} paired test concepts)"
             for v in chosen]
    where = f"results/{GAP_EXPERIMENT}.csv" + (", the committed table" if path.parent != folders[0] else "")
    reason = (f"source {source}: the one vendor with a (SIMULATED) click log; target(s) "
              + "; ".join(parts) + f": the largest lower bound of the measured gap among the {int(table['eligible'].sum())} "
              f"vendors sharing >= {min_paired} test concepts with the source ({where})")
    return DomainChoice(source, chosen, table[["gap", "gap_lo", "gap_hi", "n_paired", "eligible", "rank"]], reason)


# --- concept-grouped K-fold views (every image a test item once) --------------------------------

def kfold_views(data: PaperAData, k: int = 5, seed: int = 0,
                full: WordClickMatrix | None = None) -> Iterator[tuple[int, PaperAData]]:
    """``k`` views of ``data`` in which every concept is a TEST concept exactly once.

    The concepts of both domains are dealt into ``k`` folds by :func:`clickvision.claims.grouped_kfold`
    (every drawing of a concept, whichever vendor, in one fold). View ``f``: test = fold ``f``,
    validation = fold ``f + 1`` (mod ``k``), training = the other ``k - 2`` folds; at ``k = 5`` that is
    the data set's own 60 / 20 / 20 proportion, so a model trained on a view sees as much as on the
    data set's split, and the ``k`` views together score every image once (about ``k`` times the test
    rows of one split). The source's eq. (1) click features are rebuilt per view on ITS training
    images (the vocabulary: the K words with most clicks on them; idf and zero rows follow), from the
    word click matrix of every word clicked on any source image (read once from the SIMULATED log and
    cached; ``full``: that matrix, row-aligned with ``data.source``, when the caller has it). The
    data set's split keeps its role in every other notebook. Yields ``(f, view)``. Raises ValueError
    (eagerly) when the data lack a ``concept`` column, ``k`` is not an int >= 3 or ``full`` is not
    row-aligned with the source.
    """
    from ...claims import grouped_kfold

    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 3:
        raise ValueError(f"kfold_views: k must be an int >= 3 (test, validation and training folds), got {k!r}")
    for d in (data.source, data.target):
        if "concept" not in d.items.columns:
            raise ValueError(f"kfold_views: the {d.name} items have no 'concept' column to group the folds by")
    concepts = np.concatenate([data.source.items["concept"].astype(str).to_numpy(),
                               data.target.items["concept"].astype(str).to_numpy()])
    fold = np.empty(len(concepts), dtype=np.int64)
    for f, (_, test) in enumerate(grouped_kfold(concepts, k, seed)):
        fold[test] = f
    n_s = len(data.source.items)
    everything = _source_word_clicks(data, data.source.items["key"].astype(str).tolist()) if full is None else full
    if not _row_aligned(everything, data.source):
        raise ValueError("kfold_views: full must be row-aligned with data.source (one row per source image, in order)")
    return _kfold_iter(data, k, fold[:n_s], fold[n_s:], everything)


def _kfold_iter(data: PaperAData, k: int, fold_s: np.ndarray, fold_t: np.ndarray,
                everything: WordClickMatrix) -> Iterator[tuple[int, PaperAData]]:
    def split_of(fold: np.ndarray, f: int) -> np.ndarray:
        return np.where(fold == f, "test", np.where(fold == (f + 1) % k, "val", "train")).astype(object)

    for f in range(k):
        s_split, t_split = split_of(fold_s, f), split_of(fold_t, f)
        wc = WordClickMatrix(everything.counts, everything.keys, everything.vocabulary, everything.word_clicks,
                             s_split == "train", {**everything.stats, "train_words": len(everything.vocabulary)})
        wc = reselect_vocabulary(wc, np.arange(wc.n_images), data.k)
        tfidf = click_tfidf(wc, variant=data.tfidf.variant)
        src, tgt = data.source, data.target
        source = DomainData(src.name, src.items.assign(split=s_split), src.y, s_split, src.phi, src.omega,
                            tfidf.dense(), tfidf.valid, src.noisy)
        target = DomainData(tgt.name, tgt.items.assign(split=t_split), tgt.y, t_split, tgt.phi, tgt.omega,
                            tgt.clicks, tgt.valid, tgt.noisy)
        meta = {**data.meta, "fold": f, "folds": k, "k": wc.k, "zero_rows": tfidf.n_zero_rows,
                "zero_train_rows": tfidf.n_zero_train_rows}
        yield f, PaperAData(source, target, data.classes, list(wc.vocabulary), wc, tfidf, meta)


def over_folds(data: PaperAData, k: int, seed: int, run) -> pd.DataFrame:
    """``run(view)`` (tidy rows) on each of :func:`kfold_views`' views, with a ``fold`` column; ``k = 1``:
    ``run(data)`` on the data set's own split (``fold`` 0)."""
    if k == 1:
        return pd.DataFrame(run(data)).assign(fold=0)
    from ... import runtime

    return pd.concat([pd.DataFrame(run(view)).assign(fold=f)
                      for f, view in runtime.progress(kfold_views(data, k, seed), total=k,
                                                      desc=f"{k}-fold views")], ignore_index=True)


# --- the target domain: any emoji vendor (chosen from 00.02's measured gaps, choose_domains) ------------

def emoji_set_of(vendor: str):
    """The emoji image set that holds ``vendor``'s rows: the default set (cached features) for its vendors."""
    from ...data import load_emoji
    from ...data.emoji import VENDORS

    if vendor in VENDORS:
        return load_emoji()
    try:
        return load_emoji(vendors=[vendor])
    except TypeError as exc:  # an emoji module without the vendors= argument
        raise ValueError(f"target_vendor {vendor!r} is not a base emoji vendor {tuple(VENDORS)} and this "
                         "load_emoji has no vendors= argument") from exc


def _rows_by_key(items: pd.DataFrame, keys: Sequence[str], where: str) -> np.ndarray:
    index = pd.Index(items["key"].astype(str))
    pos = index.get_indexer([str(k) for k in keys])
    if (pos < 0).any():
        missing = [k for k, p in zip(keys, pos) if p < 0][:5]
        raise ValueError(f"{where}: images {missing} are not in the emoji set")
    return pos


def with_target_vendor(data: PaperAData, vendor: str, with_map: bool, image_size: int = IMAGE_SIZE) -> PaperAData:
    """``data`` with the target domain replaced by ``vendor``'s emoji (labels indexed as ``data.classes``);
    ``data`` itself when ``vendor`` is already its target (the default load's :data:`TARGET_VENDOR`)."""
    if data.meta.get("target_vendor", TARGET_VENDOR) == vendor:
        return data
    from ...features import extract_features

    emoji = emoji_set_of(vendor)
    items = emoji.items
    rows = np.flatnonzero((items["domain"] == vendor).to_numpy())
    if not len(rows):
        raise ValueError(f"target_vendor: the emoji set has no rows of vendor {vendor!r}")
    frame = items.iloc[rows].reset_index(drop=True)
    label_id = {c: i for i, c in enumerate(data.classes)}
    unknown = sorted(set(frame["label"]) - set(label_id))
    if unknown:
        raise ValueError(f"target_vendor {vendor!r}: classes {unknown[:5]} are not among the source's")
    phi = extract_features(emoji, image_size=image_size, kind="pooled")[rows]
    omega = extract_features(emoji, image_size=image_size, kind="map")[rows] if with_map else None
    target = DomainData("target", frame, frame["label"].map(label_id).to_numpy(np.int64),
                        frame["split"].astype(str).to_numpy(), phi, omega)
    return PaperAData(data.source, target, data.classes, data.vocabulary, data.word_clicks, data.tfidf,
                      {**data.meta, "target_vendor": vendor})


def check_vendors(source_vendor: str, target_vendor: str) -> None:
    """ValueError naming the parameter when the pair cannot run (the source needs a SIMULATED click log)."""
    if source_vendor != SOURCE_VENDOR:
        raise ValueError(f"source_vendor {source_vendor!r}: paper A's source needs a SIMULATED click log, and only "
                         f"{SOURCE_VENDOR!r}'s (emoji-{SOURCE_VENDOR}) is built; the parameter is the hook for more")
    if not isinstance(target_vendor, str) or not target_vendor or target_vendor == source_vendor:
        raise ValueError(f"target_vendor must be an emoji vendor other than the source {source_vendor!r}, "
                         f"got {target_vendor!r}")
