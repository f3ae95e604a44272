"""A.07's and A.08's validation choices of lambda and mu (paper_a.joint.select_lambda / select_mu)."""
from __future__ import annotations

import pandas as pd
import pytest

from clickvision.experiments.paper_a import joint as J


def _rows(correct: dict[tuple[bool, float], list[int]], n_seeds: int = 2) -> pd.DataFrame:
    """Per (shared, lambda): the correctness of each validation image, the same on every seed."""
    return pd.DataFrame([{"metric": "val_correct_t", "shared": s, "lam": lam, "seed": k, "item": f"i{i}", "value": v}
                         for (s, lam), vals in correct.items() for k in range(n_seeds) for i, v in enumerate(vals)])


def test_reference_kept_unless_beaten_and_lambda_0_and_1_are_not_candidates():
    n = 40
    rows = _rows({(False, 0.0): [1] * n, (False, 0.4): [0] * 20 + [1] * 20, (False, 0.8): [0] * 19 + [1] * 21,
                  (False, 1.0): [1] * n, (True, 0.0): [1] * n, (True, 0.4): [0] * 30 + [1] * 10,
                  (True, 0.8): [1] * 30 + [0] * 10, (True, 1.0): [1] * n})
    sel = J.select_lambda(rows)
    # unshared: 0.8 is one image better than 0.4 (within 1 SE): the paper's 0.4 is kept;
    # shared: 0.8 is 20 images better: chosen. lambda 0 and 1 are never candidates.
    assert sel[False].value == 0.4 and sel[True].value == 0.8
    assert set(sel[True].table.index) == {0.4, 0.8}


def test_other_metrics_are_ignored_and_no_multitask_lambda_is_an_error():
    rows = _rows({(False, 0.2): [1, 0, 1], (True, 0.2): [1, 1, 0], (False, 0.8): [1, 1, 1], (True, 0.8): [0, 0, 0]})
    noise = rows.assign(metric="correct_t", value=1 - rows["value"])
    sel = J.select_lambda(pd.concat([rows, noise]))  # reference: 0.2, the grid value nearest the paper's 0.4
    assert sel[False].reference == 0.2 and sel[True].value == 0.2
    with pytest.raises(ValueError, match="0 < lambda < 1"):
        J.select_lambda(_rows({(False, 0.0): [1], (True, 0.0): [1], (False, 1.0): [0], (True, 1.0): [1]}))


def test_select_mu_per_model():
    rows = pd.DataFrame([{"metric": "val_correct_t", "model": m, "mu": mu, "seed": 0, "item": f"i{i}",
                          "value": float(i < k)} for m, ks in (("MTMDD-VM", {0.1: 10, 1.0: 30}),
                                                               ("MTMDD-VM*", {0.1: 12, 1.0: 11}))
                         for mu, k in ks.items() for i in range(40)])
    sel = J.select_mu(rows, {"MTMDD-VM": 0.1, "MTMDD-VM*": 0.9})
    assert sel["MTMDD-VM"].value == 1.0  # 20 of 40 images better than the paper's 0.1
    assert sel["MTMDD-VM*"].reference == 1.0 and sel["MTMDD-VM*"].value == 1.0  # 0.9 not run: nearest is 1
    with pytest.raises(ValueError, match="model 'MTTDL'"):
        J.select_mu(rows, {"MTTDL": 1.0})


def test_select_mu_pools_the_targets_validation_images_and_claims_name_the_targets():
    """A.08 (and A.07) run on every target domain A.10 runs on (core.over_targets): mu is chosen on the
    targets' validation images pooled, so a gain on one target alone does not decide it, and the claims'
    texts name the targets they pool."""
    from clickvision.experiments.paper_a.core import over_targets

    def part(k_ref, k_alt):  # per target: the reference mu 0.1 right on k_ref of 40 images, mu 1 on k_alt
        return pd.DataFrame([{"metric": m, "model": model, "mu": mu, "seed": 0, "item": f"i{i}", "value": float(i < k)}
                             for model, mu, k in (("MTMDD-VM", 0.1, k_ref), ("MTMDD-VM", 1.0, k_alt),
                                                  ("MTTDL", 0.1, 20), ("MTTDL", 1.0, 20))
                             for m in ("val_correct_t", "correct_t") for i in range(40)])

    one = part(10, 30)  # alone, this target would choose mu = 1 (20 images better)
    rows = over_targets({"a": one, "b": part(30, 10)}, lambda r: r)  # the other target the opposite way
    assert J.select_mu(one, {"MTMDD-VM": 0.1})["MTMDD-VM"].value == 1.0
    sel = J.select_mu(rows, {"MTMDD-VM": 0.1})["MTMDD-VM"]
    assert sel.value == 0.1 and sel.table.loc[1.0, "n_items"] == 80  # both targets' images, distinct items
    texts = [c.claim for c, d in J.claims_fig12(rows) if d is not None]
    assert texts and all(t.endswith("; pooled over the targets a, b") for t in texts)
    assert not any("pooled" in c.claim for c, _ in J.claims_fig12(one))
