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


def test_tables_shapes_and_columns(swept):
    items, out, _, _ = swept
    n_test = len(items.rows("test"))
    assert list(out.items.columns) == S.ITEM_COLUMNS
    assert len(out.items) == 4 * 2 * 2 * 2 * n_test  # cells x ratios x methods x seeds x test images
    assert not out.items.duplicated(["density", "alignment", "label_ratio", "method", "seed", "item"]).any()
    assert set(out.items["item"]) == set(items.keys[items.rows("test")])  # image keys, not row numbers
    assert out.items["value"].between(0, 1).all()
    cells = out.cells
    assert len(cells) == 4 and list(cells[["density", "alignment"]].itertuples(index=False, name=None)) == list(GATES)
    for col in ("events", "events_per_user", "events_per_item", "paper_events_per_user", "paper_events_per_item",
                "cf_items", "cf_events", "gate_map", "gate_lo", "gate_hi", "prior", "gate_ratio", "gate_open",
                "information", "true_factor_map", "true_factor_lo", "true_factor_hi", "alpha_0.5", "alpha_1"):
        assert col in cells.columns, col
    np.testing.assert_allclose(cells["gate_map"], list(GATES.values()))
    np.testing.assert_allclose(cells["information"], cells["gate_map"] - cells["prior"])
    toys = D.paper_density("Toys")
    assert cells.loc[cells["density"] == "Toys", "paper_events_per_user"].iloc[0] == pytest.approx(toys["events_per_user"])
    g = out.gains
    assert len(g) == 4 * 2 and {"alpha", "image_only_map", "mtl_map", "gain_%", "ap_diff", "ap_lo", "ap_hi", "mde",
                                "n_seeds", "n_items", "information"} <= set(g.columns)
    judged = g["ap_diff"].notna()
    assert ((g["ap_lo"] <= g["ap_diff"]) & (g["ap_diff"] <= g["ap_hi"]))[judged].all()
    for row in g[~judged].itertuples():  # the engine leaves a contrast of two identical arms unjudged (NaN)
        cell = out.items.query("density == @row.density and alignment == @row.alignment "
                               "and label_ratio == @row.label_ratio")
        w = cell.pivot_table(index=["seed", "item"], columns="method", values="value")
        np.testing.assert_array_equal(w[S.MTL], w[S.IMAGE_ONLY])
    assert (g["n_seeds"] == 2).all() and (g["n_items"] == n_test).all()
    np.testing.assert_allclose(g["gain_%"], 100 * (g["mtl_map"] - g["image_only_map"]) / g["image_only_map"])
    # the gain row is the engine's measured contrast on that cell's and ratio's per-image rows
    first = g.iloc[0]
    sub = out.items.query("density == @first.density and alignment == @first.alignment "
                          "and label_ratio == @first.label_ratio")
    j = claims.judge(claims.Claim("D", "measured", "", "direction", arms=(S.MTL, S.IMAGE_ONLY)), sub, n_resamples=200)
    assert (first["ap_diff"], first["ap_lo"], first["ap_hi"]) == pytest.approx((j.estimate, j.ci_low, j.ci_high))
    w = sub.pivot_table(index=["seed", "item"], columns="method", values="value")
    assert first["ap_diff"] == pytest.approx((w[S.MTL] - w[S.IMAGE_ONLY]).mean())
    # the test mAP of the fits table is the seed-averaged mAP of the gain table
    f = out.fits.query("density == @first.density and alignment == @first.alignment "
                       "and label_ratio == @first.label_ratio and method == @S.MTL")
    assert f["test_mAP"].mean() == pytest.approx(first["mtl_map"])


def test_gain_relation_matches_the_engines_trend(swept):
    _, out, _, _ = swept
    rel = S.gain_relation(out.items, out.cells, n_boot=300)
    assert list(rel["label_ratio"]) == [0.5, 1.0, "all"] and (rel["n_cells"] == 4).all()
    x = out.cells["information"].to_numpy()
    arms = tuple(S.cell_name(d, a) for d, a in zip(out.cells["density"], out.cells["alignment"]))
    for _, row in rel.iterrows():
        ratio = None if row["label_ratio"] == "all" else row["label_ratio"]
        diff = S.gain_difference_items(out.items, ratio)
        j = claims.judge(claims.Claim("D", "measured", "", "trend", arms=arms, settings=tuple(x)), diff, n_resamples=300)
        span = x.max() - x.min()
        assert row["slope"] * span == pytest.approx(j.estimate)
        assert row["slope_lo"] * span == pytest.approx(j.ci_low) and row["slope_hi"] * span == pytest.approx(j.ci_high)
        assert -1 <= row["spearman_lo"] <= row["spearman"] <= row["spearman_hi"] <= 1 or np.isnan(row["spearman"])
    one = S.gain_relation(out.items[out.items["label_ratio"] == 0.5], out.cells, n_boot=50)
    assert list(one["label_ratio"]) == [0.5]  # one ratio: no "all" row
    # the point Spearman is scipy's over the cells' mean gains
    from scipy.stats import spearmanr
    d = S.gain_difference_items(out.items, 0.5)
    means = d.groupby("method")["value"].mean().reindex(list(arms)).to_numpy()
    assert rel.loc[0, "spearman"] == pytest.approx(spearmanr(x, means).statistic)
    # 'all' averages each (seed, image)'s gain over the ratios
    both = S.gain_difference_items(out.items, None)
    per_ratio = pd.concat([S.gain_difference_items(out.items, r) for r in (0.5, 1.0)])
    assert both["value"].mean() == pytest.approx(per_ratio["value"].mean())
    with pytest.raises(ValueError, match="x must be a column"):
        S.gain_relation(out.items, out.cells, x="nope")
    with pytest.raises(ValueError, match="at least 3 cells"):
        S.gain_relation(out.items, out.cells.iloc[:2])
    with pytest.raises(ValueError, match="label ratio 0.25"):
        S.gain_difference_items(out.items, 0.25)


BASE = dict(densities=("Toys",), alignments=(0.0,), ratios=(1.0,), alphas=(1.0,), seeds=(0,))


@pytest.mark.parametrize("change, match", [
    (dict(densities=()), "densities"),
    (dict(densities=("Books",)), "densities"),
    (dict(densities=("Toys", "Toys")), "densities"),
    (dict(alignments=(1.5,)), "alignments"),
    (dict(alignments="0.5"), "alignments"),
    (dict(ratios=(0.0, 1.0)), "ratios"),
    (dict(alphas=()), "alphas"),
    (dict(alphas=(0.5, -1.0)), "alphas"),
    (dict(seeds=()), "seeds"),
    (dict(seeds=(0.5,)), "seeds"),
    (dict(unit="pixels"), "unit"),
    (dict(n_boot=1), "n_boot"),
    (dict(density="Toys"), "density"),
])
def test_information_sweep_rejects_bad_input(change, match):
    with pytest.raises(ValueError, match=match):
        S.information_sweep(**{**BASE, **change}, make_run=lambda a, d: None)


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


# ----------------------------------------------------------------------------- processes, plan, record
def test_processes_give_the_serial_loops_numbers(swept):
    """n_workers > 1 (Image-only fits, then the cells' runs, then every cell x ratio in processes) gives
    every table of the serial loop exactly: the sharing of the Image-only fits survives the processes."""
    items, serial, _, _ = swept
    par = S.information_sweep(("Pinterest", "Toys"), (0.0, 1.0), (0.5, 1.0), (0.5, 2.0), (0, 1), settings=FIT,
                              items=items, make_run=make_runner(items), n_boot=200, n_workers=2, threads=1)
    for name in serial._fields:
        pd.testing.assert_frame_equal(getattr(par, name), getattr(serial, name), check_exact=True, obj=name)


@pytest.fixture
def d03_alpha(monkeypatch):
    monkeypatch.setattr(D, "selected_alpha", lambda profile="default", **kw: (0.5, "validation, D.03 (test)"))


def test_sweep_plan_grid_of_each_profile(d03_alpha):
    default = S.SweepPlan().grid()
    assert (default["densities"], default["alignments"], default["ratios"]) == (["Pinterest", "Toys"], [0.0, 0.5, 1.0],
                                                                                [0.1])
    assert default["alphas"] == [0.5] and "D.03" in default["alpha_source"]
    assert default["seeds"] == (0, 1, 2, 3, 4) and default["epochs"] == 30 and default["cf2label_epochs"] == 20
    paper = S.SweepPlan(profile="paper").grid()
    assert paper["densities"] == list(S.PAPER_GRID["densities"]) and paper["ratios"] == list(S.PAPER_GRID["label_ratios"])
    assert paper["alignments"] == list(S.PAPER_GRID["alignments"]) and paper["alphas"] == list(S.PAPER_GRID["alphas"])
    assert paper["epochs"] == 80
    # paper widens only what was left at its default; a parameter given is kept
    kept = S.SweepPlan(profile="paper", densities=("Toys",), alphas=(1.0, 0.5), epochs=7).grid()
    assert kept["densities"] == ["Toys"] and kept["alphas"] == [0.5, 1.0] and kept["epochs"] == 7
    assert kept["ratios"] == list(S.PAPER_GRID["label_ratios"])
    smoke = S.SweepPlan(profile="smoke", label_ratios=(0.5, 0.1, 1.0)).grid()
    assert smoke["densities"] == ["Toys"] and smoke["ratios"] == [0.1, 1.0] and smoke["seeds"] == (0,)
    assert smoke["epochs"] == 2 and smoke["cf2label_epochs"] == 2
    kw = S.SweepPlan(profile="smoke").sweep_kwargs()
    assert kw["max_users"] == 2000 and kw["settings"].epochs == 2 and kw["cf_settings"].ease_lams == (1000.0,)
    assert S.SweepPlan().sweep_kwargs()["max_users"] is None


@pytest.mark.parametrize("change, name", [
    ({"profile": "huge"}, "profile"), ({"densities": ("Nowhere",)}, "densities"), ({"densities": ()}, "densities"),
    ({"alignments": (0.5, 0.5)}, "alignments"), ({"alignments": (1.5,)}, "alignments"),
    ({"label_ratios": (0.0,)}, "label_ratios"), ({"alphas": (-1.0,)}, "alphas"), ({"n_seeds": 0}, "n_seeds"),
    ({"epochs": -1}, "epochs"), ({"vae_beta": 0}, "vae_beta"), ({"mask_unit": "pixels"}, "mask_unit"),
    ({"cf_model": "svd"}, "cf_model"), ({"cf_scope": "all"}, "cf_scope")])
def test_sweep_plan_names_the_bad_parameter(change, name):
    with pytest.raises(ValueError, match=f"^{name} must be"):
        S.SweepPlan(**change)


def test_sweep_plan_defaults_are_the_notebooks_parameters():
    from clickvision import paths
    from clickvision.nbrun import notebook_parameters

    declared = notebook_parameters(paths.NOTEBOOKS_DIR / "D-collaborative-image-understanding"
                                   / "D.07-Information-Sweep.ipynb")
    for name, field in S.SweepPlan.__dataclass_fields__.items():
        value = field.default
        assert (list(value) if isinstance(value, tuple) else value) == declared[name], name


def test_a_recorded_run_reads_back_whole(swept, tmp_path):
    _, out, _, _ = swept
    relation = S.gain_relation(out.items, out.cells, n_boot=50)
    folder = S.save_recorded(out, relation, tmp_path / "rec", {"commit": "abc", "wall_s": 1.5})
    tables, meta = S.load_recorded(folder)
    assert meta == {"commit": "abc", "wall_s": 1.5}
    pd.testing.assert_frame_equal(tables["gains"], out.gains, check_exact=True)
    pd.testing.assert_frame_equal(tables["cells"], out.cells, check_exact=True)
    stored = pd.read_csv(folder / "items.csv.gz")
    assert (stored["method"] == S.IMAGE_ONLY).sum() == (out.items["method"] == S.IMAGE_ONLY).sum() // 4  # once, not per cell
    key = S.ITEM_COLUMNS[:-1]
    back = tables["items"].sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(back, out.items.sort_values(key).reset_index(drop=True), check_exact=True)
    again = S.gain_relation(tables["items"], tables["cells"], n_boot=50)  # the relation recomputes from the record
    pd.testing.assert_frame_equal(again, relation)
    (folder / "fits.csv").unlink()
    with pytest.raises(FileNotFoundError, match=r"missing \['fits.csv'\]"):
        S.load_recorded(folder)


def test_labelled_items_travel_as_one_npz(tmp_path):
    from clickvision.experiments.paper_d import data as DD

    items = toy_items()
    path = DD.save_labelled_items(items, tmp_path / "items.npz")
    back = DD.load_labelled_items(path)
    for name in DD.ITEM_ARRAYS:
        a, b = getattr(items, name), getattr(back, name)
        assert (a is None) == (b is None), name
        if a is not None:
            assert a.dtype == b.dtype, name
            np.testing.assert_array_equal(a, b)
    assert back.classes == list(items.classes) and back.rule == items.rule
    (tmp_path / "bad.npz").write_text("not an npz")
    with pytest.raises(ValueError, match="bad.npz: not a saved LabelledItems"):
        DD.load_labelled_items(tmp_path / "bad.npz")


def test_the_command_records_a_run(swept, tmp_path, monkeypatch, d03_alpha):
    _, out, _, _ = swept
    seen = {}

    def fake_run(self, n_workers=1, threads=1, verbose=False, items=None):
        seen.update(plan=self, n_workers=n_workers, threads=threads)
        return out

    monkeypatch.setattr(S.SweepPlan, "run", fake_run)
    assert S.main(["--profile", "smoke", "--out", str(tmp_path / "r"), "--workers", "3", "--plan",
                   '{"n_seeds": 2, "alignments": [0.0, 1.0]}', "--commit", "deadbeef"]) == 0
    assert seen["plan"].n_seeds == 2 and seen["plan"].alignments == (0.0, 1.0) and seen["n_workers"] == 3
    tables, meta = S.load_recorded(tmp_path / "r")
    assert meta["commit"] == "deadbeef" and meta["plan"]["profile"] == "smoke" and meta["workers"] == 3
    assert len(tables["gains"]) == len(out.gains) and len(tables["relation"]) == 3
    for bad in ('{"profile": "paper"}', '{"nope": 1}', "[1]", "{not json"):
        with pytest.raises(SystemExit):
            S.main(["--out", str(tmp_path / "x"), "--plan", bad])
    assert not (tmp_path / "x").exists()


def test_the_figures_draw_every_cell_and_ratio(swept):
    import matplotlib.pyplot as plt

    _, out, _, _ = swept
    fig, ax = S.gain_figure(out.cells, out.gains, 2)
    assert len(ax.containers) == len(out.gains)  # one errorbar per (cell, ratio)
    plt.close(fig)
    fig, axes = S.gain_panels(out.cells, out.gains, "title")
    assert len(axes) == 2 and [len(a.containers) for a in axes] == [4, 4]
    plt.close(fig)
