"""A.07's validation choice of the multitask weight lambda (paper_a.joint.select_lambda)."""
from __future__ import annotations

import pandas as pd
import pytest

from clickvision.experiments.paper_a import joint as J


def _rows(means: dict[tuple[bool, float], list[float]]) -> pd.DataFrame:
    return pd.DataFrame([{"metric": "val_acc_t", "shared": s, "lam": lam, "seed": k, "value": v}
                         for (s, lam), vals in means.items() for k, v in enumerate(vals)])


def test_best_mean_among_multitask_lambdas_only():
    rows = _rows({(False, 0.0): [0.70, 0.70], (False, 0.4): [0.60, 0.64], (False, 0.8): [0.66, 0.64],
                  (False, 1.0): [0.90, 0.90], (True, 0.0): [0.50, 0.50], (True, 0.4): [0.63, 0.61],
                  (True, 0.8): [0.55, 0.57], (True, 1.0): [0.1, 0.1]})
    # lambda 0 (no click loss) and 1 (no softmax) have the best means but are not multitask settings
    assert J.select_lambda(rows) == {False: 0.8, True: 0.4}


def test_other_metrics_are_ignored_and_no_multitask_lambda_is_an_error():
    rows = _rows({(False, 0.4): [0.5], (True, 0.4): [0.5], (False, 0.8): [0.4], (True, 0.8): [0.6]})
    noise = rows.assign(metric="acc_t", value=1 - rows["value"])
    assert J.select_lambda(pd.concat([rows, noise])) == {False: 0.4, True: 0.8}
    with pytest.raises(ValueError, match="0 < lambda < 1"):
        J.select_lambda(_rows({(False, 0.0): [0.5], (True, 0.0): [0.5], (False, 1.0): [0.4], (True, 1.0): [0.6]}))
