"""Paper C experiment helpers: class caps, tables, claim checks, ranking (no data needed)."""
import numpy as np
import pandas as pd
import pytest

from clickvision.experiments import paper_c as pc
from clickvision.experiments import paper_c_data as pcd


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


def test_claims_table2_held_only_when_true_on_every_target():
    vals = {}
    for t, (oc, ns, nsp, ch) in {"x": (0.4, 0.5, 0.55, 0.6), "y": (0.4, 0.5, 0.65, 0.6)}.items():
        vals.update({(t, "OnlyCross"): [oc, oc + 0.01], (t, "NoShare"): [ns, ns - 0.02],
                     (t, "NoSrcSp"): [nsp, nsp], (t, "CHTN"): [ch, ch]})
    claims = {c["claim_id"]: c for c in pc.claims_table2(runs_frame(vals))}
    assert claims["C-T2-onlycross-noshare"]["held"] is True
    assert claims["C-T2-noshare-chtn"]["held"] is True
    assert claims["C-T2-nosrcsp-chtn"]["held"] is False  # y: NoSrcSp 0.65 > CHTN 0.6
    assert "(2/2 seeds)" in claims["C-T2-noshare-chtn"]["evidence"]
    assert "difference +0.110 ± 0.014" in claims["C-T2-noshare-chtn"]["evidence"]  # x: 0.6 - (0.5, 0.48), sd ddof 1
    # a lower mean whose paired gap is within one sd of zero is not held
    few = runs_frame({("x", "OnlyCross"): [0.50, 0.50, 0.40], ("x", "NoShare"): [0.49, 0.49, 0.60],
                      ("x", "NoSrcSp"): [0.5] * 3, ("x", "CHTN"): [0.6] * 3})
    claims = {c["claim_id"]: c for c in pc.claims_table2(few)}
    assert claims["C-T2-onlycross-noshare"]["held"] is False
    assert "(1/3 seeds, within 1 sd of 0: not resolved)" in claims["C-T2-onlycross-noshare"]["evidence"]


def test_claims_table1_best_and_reorder():
    df = runs_frame({("x", "CCA"): [0.3], ("x", "CFA"): [0.4], ("x", "CHTN"): [0.5],
                     ("y", "CCA"): [0.45], ("y", "CFA"): [0.35], ("y", "CHTN"): [0.4]})
    claims = {c["claim_id"]: c for c in pc.claims_table1(df)}
    assert claims["C-T1-best"]["held"] is False and "CCA" in claims["C-T1-best"]["evidence"]
    assert claims["C-T1-reorder"]["held"] is True and claims["C-T1-reorder"]["evidence"].startswith("1 baseline")
    same = runs_frame({("x", "CCA"): [0.3], ("x", "CFA"): [0.4], ("x", "CHTN"): [0.5],
                       ("y", "CCA"): [0.2], ("y", "CFA"): [0.3], ("y", "CHTN"): [0.5]})
    claims = {c["claim_id"]: c for c in pc.claims_table1(same)}
    assert claims["C-T1-best"]["held"] is True and claims["C-T1-reorder"]["held"] is False
    tie = runs_frame({("x", "CCA"): [0.300], ("x", "CFA"): [0.305], ("x", "CHTN"): [0.5],
                      ("y", "CCA"): [0.305], ("y", "CFA"): [0.300], ("y", "CHTN"): [0.5]})
    assert not {c["claim_id"]: c for c in pc.claims_table1(tie)}["C-T1-reorder"]["held"]  # within the margin
    noisy = runs_frame({("x", "CCA"): [0.30, 0.30], ("x", "CFA"): [0.36, 0.30], ("x", "CHTN"): [0.5, 0.5],
                        ("y", "CCA"): [0.35, 0.35], ("y", "CFA"): [0.30, 0.30], ("y", "CHTN"): [0.5, 0.5]})
    assert not {c["claim_id"]: c for c in pc.claims_table1(noisy)}["C-T1-reorder"]["held"]  # x: gap 0.03 < sd 0.042
    close = runs_frame({("x", "CCA"): [0.30, 0.31, 0.29], ("x", "CHTN"): [0.33, 0.29, 0.32]})
    best = {c["claim_id"]: c for c in pc.claims_table1(close)}["C-T1-best"]
    assert best["held"] is False and "not resolved" in best["evidence"]  # CHTN ahead on the mean only


def test_paired_gap_and_resolved():
    df = runs_frame({("t", "A"): [0.5, 0.6, 0.7], ("t", "B"): [0.4, 0.4, 0.4], ("t", "C"): [0.45]})
    mean, sd, n, wins = pc.paired_gap(df, "t", "A", "B")
    assert (mean, n, wins) == (pytest.approx(0.2), 3, 3) and sd == pytest.approx(0.1)  # sample sd of .1 .2 .3
    assert pc.resolved(mean, sd) and not pc.resolved(0.05, 0.1) and not pc.resolved(0.005, 0.0, margin=0.01)
    assert pc.paired_gap(df, "t", "A", "C")[2] == 3  # a one-row (deterministic) method pairs with every seed
    with pytest.raises(ValueError, match="no runs"):
        pc.paired_gap(df, "t", "A", "D")


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
