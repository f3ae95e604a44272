"""Paper D's information sweep (D.07) and the one label-paucity loop it shares with D.04 and D.06:
Image-only fits shared across the cells, alpha chosen on validation, the tables' shapes and columns,
the relation's interval against the claims engine, and bad input -- on small synthetic runs."""
import numpy as np
import pandas as pd
import pytest
from clickvision import claims
from clickvision.experiments.paper_d import core as D
from clickvision.experiments.paper_d import sweep as S
from clickvision.models import collab

import paper_d_toys  # tests/paper_d_toys.py

pytestmark = [pytest.mark.usefixtures("one_torch_thread"),
              pytest.mark.filterwarnings("ignore:validation mAP never got better:RuntimeWarning")]

FIT = collab.FitSettings(epochs=2, hidden=8, batch_size=64, patience=None, device="cpu")


def toy_items(n=200, n_extra=40, seed=0):
    """Labelled items whose first features decide the labels, plus unlabelled training rows."""
    return paper_d_toys.toy_items(n, n_extra, seed)[0]


GATES = {("Pinterest", 0.0): 0.30, ("Pinterest", 1.0): 0.40, ("Toys", 0.0): 0.35, ("Toys", 1.0): 0.60}


def make_runner(items, calls=None):
    """A cell's run without a simulation: CF vectors that carry the labels in proportion to the alignment
    (and more at the denser 'Toys'), a gate whose mAP is read from GATES."""
    tr, extra = items.rows("train"), items.unlabelled_rows("train")

    def make_run(alignment, density):
        if calls is not None:
            calls.append((density, alignment))
        rng = np.random.default_rng(int(10 * alignment) + (7 if density == "Toys" else 0))
        signal = alignment * (2.0 if density == "Toys" else 1.0)
        labelled = signal * items.y[tr].astype(float) @ rng.standard_normal((4, 5)) + rng.standard_normal((len(tr), 5))
        q = np.vstack([labelled, rng.standard_normal((len(extra), 5))])
        g = GATES[(density, alignment)]
        gate = {"map": g, "lo": g - 0.02, "hi": g + 0.02, "prior": 0.25, "ratio": g / 0.25, "open": g > 0.27}
        info = {"events": 1000, "events_per_user": 2.0 if density == "Pinterest" else 8.0, "events_per_item": 12.0,
                "cf_items": len(tr) + len(extra), "cf_events": 900}
        return D.ImageRun(items, D.gaussianize(q, np.arange(len(q))), np.full(len(q), 3.0), x_extra=items.unlabelled_x[extra],
                          gate=gate, factor_gate={"map": g + 0.1, "lo": g + 0.08, "hi": g + 0.12}, info=info)

    return make_run


@pytest.fixture(scope="module")
def swept():
    import torch

    items = toy_items()
    calls, fitted = [], []
    real = collab.fit_image_model
    mp = pytest.MonkeyPatch()

    def spy(method, *args, **kwargs):
        fitted.append(method)
        return real(method, *args, **kwargs)

    mp.setattr(collab, "fit_image_model", spy)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the tests' one_torch_thread (a module fixture runs before it)
    try:
        out = S.information_sweep(("Pinterest", "Toys"), (0.0, 1.0), (0.5, 1.0), (0.5, 2.0), (0, 1), settings=FIT,
                                  items=items, make_run=make_runner(items, calls), n_boot=200)
    finally:
        mp.undo()
        torch.set_num_threads(threads)
    return items, out, calls, fitted


def test_image_only_is_fitted_once_per_ratio_and_seed_and_shared_by_every_cell(swept):
    items, out, calls, fitted = swept
    n_cells, ratios, seeds, alphas = 4, 2, 2, 2
    assert calls == [("Pinterest", 0.0), ("Pinterest", 1.0), ("Toys", 0.0), ("Toys", 1.0)]
    assert fitted.count("image_only") == ratios * seeds  # not once per cell
    # MTL: per (cell, ratio) every alpha at seeds[0] (the chosen one's fit is seed 0's), then the other seeds
    assert fitted.count("mtl") == n_cells * ratios * (alphas + seeds - 1)
    img = out.items[out.items["method"] == S.IMAGE_ONLY]
    per_cell = [g.sort_values(["label_ratio", "seed", "item"])["value"].to_numpy()
                for _, g in img.groupby(["density", "alignment"])]
    for v in per_cell[1:]:
        np.testing.assert_array_equal(v, per_cell[0])
    # sharing is valid: a fresh Image-only fit on another cell's run (other CF vectors) gives the same scores
    other = make_runner(items)(1.0, "Toys")
    mask = D.mask_labels(items.y[items.rows("train")], 0.5, "items", 1)
    fresh = D.fit_and_score(other, "image_only", "uniform", 1.0, 1, mask, FIT)["test_scores"]
    ap = D.per_image_ap(items.y[items.rows("test")], fresh)
    rows = img.query("density == 'Pinterest' and alignment == 0.0 and label_ratio == 0.5 and seed == 1")
    key_of = {k: i for i, k in enumerate(items.keys[items.rows("test")])}
    np.testing.assert_allclose(rows["value"].to_numpy(), ap[[key_of[k] for k in rows["item"]]])


def test_alpha_is_chosen_per_cell_and_ratio_on_validation(swept):
    _, out, _, _ = swept
    for (d, a, r), s in out.alpha_sweep.groupby(["density", "alignment", "label_ratio"]):
        assert sorted(s["alpha"]) == [0.5, 2.0]
        assert s["chosen"].sum() == 1 and s["reference"].sum() == 1
        assert s.loc[s["reference"], "alpha"].item() == 2.0  # the grid's nearest to the paper's 1.5
        best = float(s.loc[s["chosen"], "alpha"].item())
        g = out.gains.query("density == @d and alignment == @a and label_ratio == @r")
        assert g["alpha"].item() == best
        assert out.cells.query("density == @d and alignment == @a")[f"alpha_{r:g}"].item() == best
        mtl = out.fits.query("density == @d and alignment == @a and label_ratio == @r and method == @S.MTL")
        assert (mtl["alpha"] == best).all() and len(mtl) == 2
        # the chosen alpha's seed-0 fit is the one the sweep scored (memoised)
        assert mtl.loc[mtl["seed"] == 0, "val_mAP"].item() == pytest.approx(s.loc[s["chosen"], "val_mAP"].item())


def test_a_run_on_other_items_is_rejected():
    items = toy_items()
    other = toy_items(seed=1)
    with pytest.raises(ValueError, match="not on the sweep's items"):
        S.information_sweep(("Toys",), (0.0,), (1.0,), (1.0,), (0,), settings=FIT, items=items,
                            make_run=lambda a, d: make_runner(other)(0.0, "Toys"))


def test_label_paucity_fixed_or_chosen_alpha_named_baseline_and_class_rows():
    items = toy_items()
    run = make_runner(items)(1.0, "Toys")
    fixed, per_seed = D.label_paucity(run, (0.5, 1.0), 2.0, (0, 1), settings=FIT, n_resamples=5)
    assert fixed.attrs["alpha_sweep"].empty and (fixed["alpha"] == 2.0).all()
    assert list(per_seed.columns) == ["label_ratio", "seed", D.IMAGE_ONLY, D.MTL_UNIFORM, "gain_%"]
    assert list(fixed.attrs["items"]["item"].unique()) == list(range(len(items.rows("test"))))  # row numbers
    chosen, _ = D.label_paucity(run, (0.5, 1.0), (0.5, 2.0), (0, 1), settings=FIT, n_resamples=None,
                                baseline="Text-only", per_class=True, item_keys=True)
    assert set(chosen["method"]) == {"Text-only", D.MTL_UNIFORM} and "lo_paper" not in chosen.columns
    sweep = chosen.attrs["alpha_sweep"]
    for r, s in sweep.groupby("label_ratio"):
        assert (chosen.loc[chosen["label_ratio"] == r, "alpha"] == s.loc[s["chosen"], "alpha"].item()).all()
    fits = chosen.attrs["fits"]
    m = fits.groupby(["label_ratio", "method"])["test_mAP"].mean()  # n_resamples=None: the seed-averaged test mAP
    for _, row in chosen.iterrows():
        assert row["mean"] == pytest.approx(m[(row["label_ratio"], row["method"])])
    classes = chosen.attrs["classes"]
    assert set(classes["item"]) <= set(items.classes) and list(classes.columns) == list(chosen.attrs["items"].columns)
    assert set(chosen.attrs["items"]["item"]) == set(items.keys[items.rows("test")])
    with pytest.raises(ValueError, match="alpha"):
        D.label_paucity(run, (1.0,), -1.0)
    with pytest.raises(ValueError, match="alphas"):
        D.label_paucity(run, (1.0,), ())
    with pytest.raises(ValueError, match="ratios"):
        D.label_paucity(run, (), 1.0)
    with pytest.raises(ValueError, match="n_resamples"):
        D.label_paucity(run, (1.0,), 1.0, n_resamples=0)


def test_save_items_writes_the_committed_runs_rows_to_evidence_and_others_to_runs(swept, monkeypatch, tmp_path):
    from clickvision import paths, provenance

    _, out, _, _ = swept
    monkeypatch.setattr(paths, "RESULTS_DIR", tmp_path)
    monkeypatch.setattr(provenance, "is_committed_run", lambda nb, params: params.get("profile") == "default")
    committed = S.save_items(out.items, "D.07-Information-Sweep", {"profile": "default"})
    assert committed == tmp_path / "evidence" / "D.07-Information-Sweep-items.csv.gz"
    back = pd.read_csv(committed)
    assert list(back.columns) == S.ITEM_COLUMNS and len(back) == len(out.items)
    np.testing.assert_array_equal(back["value"].to_numpy(), out.items["value"].to_numpy())  # full precision
    other = S.save_items(out.items, "D.07-Information-Sweep", {"profile": "smoke"})
    assert other.parent == tmp_path / "runs" and other.name.endswith(".items.csv.gz")
    with pytest.raises(ValueError, match="lacks columns"):
        S.save_items(out.items.drop(columns="density"), "D.07-Information-Sweep", {"profile": "smoke"})
