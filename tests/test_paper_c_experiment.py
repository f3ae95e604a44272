"""Paper C experiment helpers: class caps, tables, claim checks, ranking (no data needed)."""
import numpy as np
import pandas as pd
import pytest

from clickvision.experiments.paper_c import core as pc
from clickvision.experiments.paper_c import data as pcd


def runs_frame(values):
    """values: {(target, method): [average per seed]} -> a tidy runs table."""
    rows = []
    for (target, method), avgs in values.items():
        for seed, a in enumerate(avgs):
            rows.append({"target": target, "method": method, "seed": seed, "img2txt": a, "txt2img": a, "average": a})
    return pd.DataFrame(rows)


def test_cap_keeps_split_shares_and_limit():
    items = pd.DataFrame({"label": ["a"] * 100 + ["b"] * 10,
                          "split": (["train"] * 60 + ["val"] * 20 + ["test"] * 20) + ["train"] * 6 + ["test"] * 4})
    out = pcd._cap(items, 50, seed=0)
    counts = out.groupby(["label", "split"]).size()
    assert counts[("a", "train")] == 30 and counts[("a", "val")] == 10 and counts[("a", "test")] == 10
    assert counts[("b", "train")] == 6 and counts[("b", "test")] == 4  # under the cap: untouched
    assert out.equals(pcd._cap(items, 50, seed=0))  # seeded
    with pytest.raises(ValueError, match="cap_per_class"):
        pcd._cap(items, 0, 0)


def test_summarize_mean_sd_in_input_order():
    df = runs_frame({("t", "CHTN"): [0.5, 0.7], ("t", "CCA"): [0.2, 0.2]})
    s = pc.summarize(df)
    assert list(s["method"]) == ["CHTN", "CCA"]
    assert s.loc[0, "average"] == pytest.approx(0.6) and s.loc[0, "average sd"] == pytest.approx(0.1)
    assert list(s["n_seeds"]) == [2, 2]


def scores_frame(means, n=30, seeds=(0, 1, 2), noise=0.05):
    """Per-query AP rows: {(target, method): mean AP} -> target, method, seed, direction, query, value."""
    rng = np.random.default_rng(0)
    rows = []
    for (target, method), m in means.items():
        for seed in seeds:
            for d in pc.DIRECTIONS:
                v = np.clip(m + noise * rng.standard_normal(n), 0, 1)
                rows.append(pd.DataFrame({"target": target, "method": method, "seed": seed, "direction": d,
                                          "query": np.arange(n), "value": v}))
    return pd.concat(rows, ignore_index=True)


def runs_of(scores):
    """Per-seed averages of a scores frame, as Trial.runs has them."""
    g = scores.groupby(["target", "method", "seed"], sort=False)["value"].mean().rename("average").reset_index()
    return g


def test_query_ap_averages_to_cross_modal_map():
    rng = np.random.default_rng(1)
    y = np.repeat(np.arange(3), 5)
    ri, rt = rng.normal(size=(15, 4)) + y[:, None], rng.normal(size=(15, 4)) + y[:, None]
    ap = pc.query_ap(ri, rt, y)
    m = pc.metrics.cross_modal_map(ri, rt, y)
    assert len(ap) == 30 and list(ap.columns) == ["direction", "query", "value"]
    assert ap["value"].mean() == pytest.approx(m["average"])
    assert ap.groupby("direction")["value"].mean()["img2txt"] == pytest.approx(m["img2txt"])


def test_claim_data_items_and_folds():
    sc = scores_frame({("x", "A"): 0.5, ("y", "A"): 0.5, ("x", "B"): 0.4, ("y", "B"): 0.4}, n=4, seeds=(0,))
    d = pc.claim_data(sc, ("A", "B"))
    assert list(d.columns) == ["method", "seed", "fold", "item", "value"]
    assert set(d["item"]) == {f"{k}:{q}" for k in pc.DIRECTIONS for q in range(4)} and set(d["fold"]) == {"x", "y"}
    assert len(pc.claim_data(sc, ("A",), ["x"])) == 8


def test_table1_claims_best_and_reorder():
    sc = scores_frame({("x", "CCA"): 0.3, ("x", "CFA"): 0.5, ("x", "CHTN"): 0.45,
                       ("y", "CCA"): 0.5, ("y", "CFA"): 0.35, ("y", "CHTN"): 0.55})
    claims = {c.claim_id: (c, d) for c, d in pc.table1_claims(sc, runs_of(sc))}
    best, data = claims["C-T1-best"]
    assert best.arms == ("CHTN", "CFA") and best.kind == "direction" and set(data["fold"]) == {"x"}
    assert pc.judge(best, data).verdict == "contradicted"  # CHTN best pooled, but not on x
    reorder, data = claims["C-T1-reorder"]
    assert {"CCA", "CFA"} == set(reorder.arms) and data["fold"].nunique() == 1
    assert pc.judge(reorder, data).verdict == "supported"
    one = sc[sc["target"] == "x"]
    claims = {c.claim_id: c for c, _ in pc.table1_claims(one, runs_of(one))}
    assert claims["C-T1-reorder"].kind == "untestable"
    assert claims["C-T1-best"].arms == ("CHTN", "CFA")


def test_ablation_claims_orientation_and_paper_effects():
    means = {("x", "OnlyCross"): 0.4, ("x", "NoShare"): 0.5, ("x", "NoSrcSp"): 0.55, ("x", "CHTN"): 0.6,
             ("x", "NoSource"): 0.58, ("x", "NoMMD"): 0.58}
    claims = {c.claim_id: (c, d) for c, d in pc.ablation_claims(scores_frame(means))}
    assert len(claims) == 6
    c, d = claims["C-T2-onlycross-noshare"]
    assert c.arms == ("NoShare", "OnlyCross") and c.paper_effect == pytest.approx((0.017 + 0.082 + 0.019) / 3)
    assert pc.judge(c, d).verdict == "supported"
    assert claims["C-T2-ctrl-nosource-chtn"][0].paper_effect is None
    assert pc.judge(*claims["C-T2-ctrl-nosrcsp-nosource"]).verdict == "supported"  # NoSrcSp 0.55 < NoSource 0.58
    few = {k: v for k, v in means.items() if k[1] in ("NoShare", "CHTN")}
    assert [c.claim_id for c, _ in pc.ablation_claims(scores_frame(few))] == ["C-T2-noshare-chtn"]


def test_tune_keeps_the_reference_unless_beaten_by_a_standard_error():
    base = np.random.default_rng(0).uniform(0.2, 0.8, 40)
    wobble = np.tile([0.05, -0.05], 20)  # +-0.05 per query: a standard error of 0.008

    class R:
        def __init__(self, shift, noise=0.0):
            ap = base + shift + noise * wobble
            self.val_ap = pd.DataFrame({"direction": ["img2txt"] * 20 + ["txt2img"] * 20,
                                        "query": list(range(20)) * 2, "value": ap})
            self.stop, self.settings = {"best_val": ap.mean(), "stop_step": 10, "capped": False}, {}
    # dropout 0.2 has the best validation MAP by a hair (noise): the reference 0.5 is kept
    runs = {0.0: R(-0.2), 0.2: R(0.004, 1.0), 0.5: R(0.0)}
    best, table = pc.tune(lambda seed, dropout: runs[dropout], [{"dropout": d} for d in runs])
    assert table["val_map"].idxmax() == 1 and best is runs[0.5]
    assert table["reference"].tolist() == [False, False, True] and table["chosen"].tolist() == [False, False, True]
    d = runs[0.2].val_ap["value"].to_numpy() - runs[0.5].val_ap["value"].to_numpy()
    assert table.loc[1, "mean_diff"] == pytest.approx(d.mean())
    assert table.loc[1, "se"] == pytest.approx(d.std(ddof=1) / np.sqrt(len(d)))
    # a clear gain displaces it
    runs[0.0] = R(0.1)
    best, table = pc.tune(lambda seed, dropout: runs[dropout], [{"dropout": d} for d in runs])
    assert best is runs[0.0] and table["chosen"].tolist() == [True, False, False]
    with pytest.raises(ValueError, match="empty"):
        pc.tune(lambda seed: R(0), [])


def test_reference_index_takes_each_settings_nearest_value_in_turn():
    grid = [{"dropout": 0.2, "pair_weight": w} for w in (0.01, 0.1)] + [{"dropout": 0.0, "pair_weight": 0.001}]
    assert pc.reference_index(grid) == 0  # dropout nearest 0.5 first (0.2), then the weight nearest 0.001 among those
    assert pc.reference_index([{"pair_weight": w} for w in (0.1, 0.01, 0.001)]) == 2
    assert pc.reference_index([{"dropout": 0.0}], {"dropout": 0.3}) == 0 and pc.reference_index([{}]) == 0


def test_rank_cosine_and_stable_ties():
    q = np.array([[1.0, 0.0]])
    g = np.array([[0.0, 1.0], [2.0, 0.0], [1.0, 0.0], [1.0, 1.0]])
    top, sim = pc.rank(q, g, k=3)
    assert top.tolist() == [[1, 2, 3]]  # rows 1 and 2 tie at cosine 1: gallery order
    assert sim[0].tolist() == pytest.approx([1.0, 1.0, np.sqrt(0.5)])


def test_target_switch_validates():
    with pytest.raises(ValueError, match="target must be one of"):
        pc.load_target("imagenet")
    with pytest.raises(ValueError, match="root="):
        pc.load_target("wikipedia")


def test_paper_numbers_complete():
    assert set(pc.PAPER_MAP["data set"]) == {"Wikipedia", "NUS-WIDE-10k", "Pascal Sentences"}
    chtn = pc.PAPER_MAP[pc.PAPER_MAP["method"] == "CHTN"].set_index("data set")["average"]
    assert chtn.to_dict() == {"Wikipedia": 0.470, "NUS-WIDE-10k": 0.517, "Pascal Sentences": 0.472}
    assert len(pc.PAPER_MAP) == 15 * 3
