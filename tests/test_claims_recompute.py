"""Every committed verdict in results/claims.csv is recomputed from results/ alone and agrees.

The notebooks record, with each verdict, the claim's design (kind, arms, margin, direction)
and the per-item / per-seed scores it was judged on (results/evidence/<notebook>.csv.gz).
"""
import math

import pytest

from clickvision import claims as C
from clickvision import paths

LEDGER = C.load_ledger(paths.PROJ_ROOT / "results" / "claims.csv")
ROWS = LEDGER.to_dict("records")


def _evidence(notebook):
    import pandas as pd

    path = paths.PROJ_ROOT / "results" / "evidence" / f"{notebook}.csv.gz"
    return pd.read_csv(path, keep_default_na=False, na_values=[""]) if path.exists() else None


def test_every_row_is_well_formed():
    assert len(ROWS), "results/claims.csv holds no claims"
    for r in ROWS:
        where = f"{r['notebook']}: {r['claim_id']}"
        assert r["verdict"] in C.VERDICTS, where
        assert r["kind"] in C.KINDS, where
        if r["kind"] in C.TESTABLE:
            assert all(math.isfinite(float(r[k])) for k in ("estimate", "ci_low", "ci_high", "mde")), where
            assert r["ci_low"] <= r["estimate"] <= r["ci_high"] or r["kind"] == "ordering", where
            if r["verdict"] == "supported" and r["kind"] != "equivalence":
                assert r["ci_low"] > 0, f"{where}: a supported row whose interval reaches zero"
        else:
            assert r["verdict"] == r["kind"] and str(r["evidence"]).strip(), f"{where}: needs its reason"
        for col in ("profile", "commit", "versions", "device"):
            assert str(r[col]).strip(), f"{where}: provenance column {col} empty"
        assert r["profile"] == "default", f"{where}: a {r['profile']} run's verdict in the committed ledger"


@pytest.mark.parametrize("row", ROWS, ids=[f"{r['notebook']}:{r['claim_id']}" for r in ROWS])
def test_verdict_recomputes_from_results(row):
    ev = _evidence(row["notebook"])
    if row["kind"] in C.TESTABLE:
        assert ev is not None, f"results/evidence/{row['notebook']}.csv.gz missing"
    again = C.rejudge(row, ev)
    assert again.verdict == row["verdict"]
    if row["kind"] in C.TESTABLE:
        for k in ("estimate", "ci_low", "ci_high", "mde"):
            assert getattr(again, k) == pytest.approx(float(row[k]), rel=1e-6, abs=1e-9), k
