"""Paper C on a tiny synthetic target (no data build needed): CHTN training end to end,
typed text queries, the retrieval tables and the figures behind C.02's interactive cell."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from clickvision.data.base import ImageSet  # noqa: E402
from clickvision.experiments.paper_c import core as pc  # noqa: E402
from clickvision.models.crossmodal_baselines import CCA  # noqa: E402

CLASSES = ["apple", "boat", "cat"]
VOCAB = ["apple", "boat", "cat", "red", "sea", "small"]
PER_SPLIT = {"train": 12, "val": 4, "test": 4}


@pytest.fixture(scope="module")
def data():
    """Three classes; image features = class centre + noise; each text names its class and
    one random extra word; a labelled source with two classes of its own."""
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 6)) * 3
    rows, image, text, labels, idx = [], {}, {}, {}, {}
    for split, n in PER_SPLIT.items():
        y = np.repeat(np.arange(3), n)
        words = [f"{CLASSES[c].upper()}, {VOCAB[3 + rng.integers(3)]}!" for c in y]
        start = len(rows)
        rows += [{"key": f"{split}{i}", "path": "", "label": CLASSES[c], "split": split, "text": w}
                 for i, (c, w) in enumerate(zip(y, words))]
        idx[split] = np.arange(start, len(rows))
        image[split] = (centres[y] + rng.normal(size=(len(y), 6))).astype(np.float32)
        text[split] = np.array([[w in t.lower() for w in VOCAB] for t in words], np.float32)
        labels[split] = y
    pixels = np.zeros((len(rows), 8, 8, 3), np.uint8)
    for r, row in enumerate(rows):
        pixels[r, ..., CLASSES.index(row["label"])] = 255  # one colour per class
    pairs = ImageSet("toy", pd.DataFrame(rows), pixels=pixels)
    ys = rng.integers(0, 2, 40)
    return pc.CrossModalData(target="toy", source="toy-source", pairs=pairs, classes=CLASSES, vocabulary=VOCAB,
                             image=image, text=text, labels=labels, rows=idx,
                             source_image=(rng.normal(size=(40, 6)) + ys[:, None]).astype(np.float32),
                             source_labels=ys, source_classes=["s0", "s1"])


KW = dict(steps=40, hidden=64, dropout=0.0, batch_size=12)


@pytest.fixture(scope="module")
def run(data):
    """Full CHTN on the toy target, its pair-loss weight calibrated."""
    return pc.train_chtn(data, "CHTN", seed=3, **KW)


def test_train_chtn_end_to_end_deterministic_and_per_variant_terms(data, run):
    a, b = run, pc.train_chtn(data, "CHTN", seed=3, **KW)
    assert a.scores == b.scores  # bit-reproducible on the CPU
    assert np.log10(a.pair_weight) == pytest.approx(round(np.log10(a.pair_weight)))  # calibrated: power of ten
    assert a.scores["average"] > 0.6  # separable toy data; chance is about 1/3
    assert a.image_repr.shape == (12, 3) and np.allclose(a.text_repr.sum(1), 1.0)  # probability vectors
    short = {**KW, "steps": 3}
    terms = {v: set(pc.train_chtn(data, v, seed=0, pair_weight=0.01, **short).history.query("split == 'train'")["name"])
             for v in ("OnlyCross", "NoSrcSp")}
    assert {"pair", "correlation"} <= terms["OnlyCross"] and not {"mmd", "source"} & terms["OnlyCross"]
    assert "mmd" in terms["NoSrcSp"] and "source" not in terms["NoSrcSp"]
    with pytest.raises(ValueError, match="solver"):
        pc.train_chtn(data, solver="rmsprop", **KW)
    # stopped by the rule on the validation MAP; per-query AP averages to the test MAP
    assert set(a.stop) >= {"stop_step", "best_step", "best_val", "capped"} and a.stop["stop_step"] <= 40
    assert a.ap["value"].mean() == pytest.approx(a.scores["average"]) and len(a.ap) == 2 * 12
    authors = pc.train_chtn(data, "CHTN", seed=0, pair_weight=0.01, **{**KW, "steps": 32}, **pc.AUTHORS)
    assert authors.stop["batches"] == 16 * authors.stop["stop_step"] and authors.stop["stop_step"] <= 2


def test_run_trial_search_and_seeds(data):
    rule = pc.StopRule(max_steps=6, eval_every=3, patience=1, min_delta=0.0, min_steps=0)
    tr = pc.run_trial({"toy": data}, [0, 1], ["NoShare", "CHTN", "Deep-SM", "CCA"], rule=rule, hidden=16,
                      dropouts=(0.0, 0.5), pair_weights=(0.01, 0.1))
    assert len(tr.runs) == 8 and set(tr.scores["method"]) == {"NoShare", "CHTN", "Deep-SM", "CCA"}
    assert len(tr.scores) == 8 * 2 * 12
    s = tr.search
    assert len(s[s["method"] == "CHTN"]) == 3 and len(s[s["method"] == "NoShare"]) == 2  # pw x {0.5}, then dropout 0
    assert s.groupby("method")["chosen"].sum().eq(1).all()
    assert {"mean_diff", "se", "reference"} <= set(s.columns)
    ref = s[(s["method"] == "CHTN") & s["reference"]]  # stage 1: the weight nearest the paper's 0.001, dropout 0.5
    assert ref[["dropout", "pair_weight"]].values.tolist()[0] == [0.5, 0.01]
    assert s.loc[(s["method"] == "Deep-SM") & s["reference"], "dropout"].tolist() == [0.5]
    chtn_w = tr.runs.loc[tr.runs["method"] == "CHTN", "pair_weight"].iloc[0]
    assert (tr.runs.loc[tr.runs["method"] == "NoShare", "pair_weight"] == chtn_w).all()  # CHTN's weight
    cca = tr.scores[tr.scores["method"] == "CCA"]
    assert (cca[cca["seed"] == 0]["value"].to_numpy() == cca[cca["seed"] == 1]["value"].to_numpy()).all()
    st = pc.stop_table(tr.runs)
    assert set(st["method"]) == {"NoShare", "CHTN", "Deep-SM"} and (st["seeds"] == 2).all()
    curves = pc.val_curves(tr)
    assert set(curves["method"]) == {"NoShare", "CHTN", "Deep-SM"} and set(curves["seed"]) == {0, 1}
    last = curves.groupby(["method", "seed"])["batches"].max()
    runs = tr.runs.set_index(["method", "seed"])
    assert all(last[k] == runs.loc[k, "batches"] for k in last.index)  # every curve ends where its run stopped
    fig = pc.plot_val_curves(curves, tr.runs)
    assert sum(ax.get_visible() for ax in fig.axes) == 3
    plt.close(fig)
    with pytest.raises(ValueError, match="no curves"):
        pc.plot_val_curves(curves.iloc[:0], tr.runs)


def test_text_query_tokenises_like_training_and_ranks_by_cosine(data, run):
    top = pc.text_query(run.model, data, "Boat!! on the SEA, zeppelin", run.image_repr, k=4)
    assert top["known words"].iloc[0] == "boat sea"  # case and punctuation as the vectoriser; unknown dropped
    assert list(top["rank"]) == [1, 2, 3, 4] and top["similarity"].is_monotonic_decreasing
    assert (top["label"] == "boat").mean() >= 0.75
    none = pc.text_query(run.model, data, "zeppelin", run.image_repr, k=2)
    assert none["known words"].iloc[0] == "(none)" and len(none) == 2
    with pytest.raises(TypeError, match="query"):
        pc.text_query(run.model, data, None, run.image_repr)


def test_retrieval_table_and_interactive_figures(data, run):
    y = data.labels["test"]
    onehot = np.eye(3)[y]
    table = pc.retrieval_table(data, onehot, onehot, [0, 5], "img2txt", k=3)
    assert len(table) == 6 and table["relevant"].all()  # oracle representations: every result relevant
    assert set(table["query label"]) == {"apple", "boat"}
    with pytest.raises(ValueError, match="direction"):
        pc.retrieval_table(data, onehot, onehot, [0], "txt2txt")
    fig = pc.plot_image_query(data, onehot, onehot, index=2, k=3)
    assert len(fig.axes) == 4
    fig2 = pc.plot_text_query(data, pc.text_query(run.model, data, "cat", run.image_repr, k=3), "cat")
    assert "cat" in fig2._suptitle.get_text()
    plt.close("all")
    with pytest.raises(IndexError, match="index"):
        pc.plot_image_query(data, onehot, onehot, index=len(y))


def test_baselines_reject_nan_features():
    x = np.ones((4, 2))
    x[1, 0] = np.nan
    with pytest.raises(ValueError, match="image features contain NaN"):
        CCA().fit(x, np.ones((4, 3)))


def test_run_trial_same_numbers_in_one_or_two_processes(data):
    rule = pc.StopRule(max_steps=6, eval_every=3, patience=1, min_delta=0.0, min_steps=0)
    kw = dict(rule=rule, hidden=16, dropouts=(0.0, 0.5), pair_weights=(0.01,))
    one = pc.run_trial({"toy": data}, [0, 1], ["NoShare", "KCCA (Poly)"], n_workers=1, **kw)
    two = pc.run_trial({"toy": data}, [0, 1], ["NoShare", "KCCA (Poly)"], n_workers=2, **kw)
    pd.testing.assert_frame_equal(one.runs, two.runs)
    pd.testing.assert_frame_equal(one.scores, two.scores)
    pd.testing.assert_frame_equal(one.search, two.search)
