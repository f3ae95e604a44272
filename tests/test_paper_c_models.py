"""Paper C models: CHTN's shared layers, its ablation flags, and the Table 1 baselines."""
import numpy as np
import pytest
import torch

from clickvision import runtime
from clickvision.metrics import cross_modal_map
from clickvision.models.chtn import CHTN, VARIANTS, CHTNLoss, calibrate_pair_weight
from clickvision.models.crossmodal_baselines import BASELINES, CCA, CFA, KCCA, make_baseline
from clickvision.threads import limited

DX, DT, C, CS = 12, 9, 3, 4


@pytest.fixture(autouse=True)
def single_thread():
    with limited():  # tiny models: extra threads only spin
        yield


def make_model(variant="CHTN", seed=0):
    runtime.seed_everything(seed)
    return CHTN(DX, DT, C, CS, hidden=8, shared_hidden=6, dropout=0.0, variant=variant)


def make_batch(n=10, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"target": (torch.randn(n, DX, generator=g), torch.rand(n, DT, generator=g).round(),
                       torch.randint(0, C, (n,), generator=g)),
            "source": (torch.randn(n, DX, generator=g), torch.randint(0, CS, (n,), generator=g))}


def test_shared_layers_are_one_set_of_parameters_for_both_modalities():
    m = make_model()
    batch = make_batch()
    loss, terms = CHTNLoss()(m, batch)
    # The shared subnetwork's parameters appear once in the model...
    ids = [id(p) for p in m.parameters()]
    assert len(ids) == len(set(ids))
    # ...and the image and the text outputs both depend on every one of them.
    for modality, x in (("image", batch["target"][0]), ("text", batch["target"][1])):
        m.zero_grad()
        out = m.forward_image(x) if modality == "image" else m.forward_text(x)
        out["logits"].sum().backward()
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in m.shared.parameters()), modality
    # Perturbing fc9 changes both modalities' logits.
    x, t = batch["target"][0], batch["target"][1]
    before = m.forward_image(x)["logits"].detach(), m.forward_text(t)["logits"].detach()
    with torch.no_grad():
        m.shared.fc9.weight.add_(0.5)
    assert not torch.allclose(before[0], m.forward_image(x)["logits"])
    assert not torch.allclose(before[1], m.forward_text(t)["logits"])


def test_target_image_pathway_not_tied_to_source():
    m = make_model()
    assert m.source.fc6.weight is not m.image.fc6.weight
    assert not torch.equal(m.source.fc6.weight, m.image.fc6.weight)
    assert isinstance(m.text.input_norm, torch.nn.BatchNorm1d)


def _param_names(m):
    return {n.rsplit(".", 1)[0] for n, _ in m.named_parameters()}


def test_ablation_flags_remove_exactly_what_they_name():
    full = make_model("CHTN")
    names = {v: _param_names(make_model(v)) for v in VARIANTS}
    terms = {v: set(CHTNLoss()(make_model(v), make_batch())[1]) for v in VARIANTS}
    assert terms["CHTN"] == {"pair", "correlation", "mmd", "source"}
    # NoSrcSp: only the source classifier and the source loss go.
    assert names["CHTN"] - names["NoSrcSp"] == {"source_classifier"}
    assert names["NoSrcSp"] <= names["CHTN"]
    assert terms["NoSrcSp"] == terms["CHTN"] - {"source"}
    # NoShare: the shared fc8/fc9/classifier go, replaced by one classifier per modality.
    shared = {n for n in names["CHTN"] if n.startswith("shared.")}
    assert shared == {"shared.fc8", "shared.fc9", "shared.classifier"}
    assert names["CHTN"] - names["NoShare"] == shared
    assert names["NoShare"] - names["CHTN"] == {"image_classifier", "text_classifier"}
    assert terms["NoShare"] == terms["CHTN"]
    # OnlyCross: NoShare without the source pathway (and so without MMD and source loss).
    source = {n for n in names["CHTN"] if n.startswith("source")}
    assert names["NoShare"] - names["OnlyCross"] == source
    assert terms["OnlyCross"] == {"pair", "correlation"}
    assert full.flags.shared_layers and not make_model("OnlyCross").flags.source_pathway
    # NoSource (control): CHTN without the source pathway; the shared layers stay.
    assert names["CHTN"] - names["NoSource"] == source and names["NoSource"] <= names["CHTN"]
    assert terms["NoSource"] == {"pair", "correlation"}
    # NoMMD (control): every part of CHTN, the MMD term alone goes.
    assert names["NoMMD"] == names["CHTN"] and terms["NoMMD"] == terms["CHTN"] - {"mmd"}
    with pytest.raises(ValueError, match="variant"):
        make_model("NoPair")


def test_loss_weights_and_representation():
    m, batch = make_model(), make_batch()
    loss_fn = CHTNLoss(pair_weight=0.01, mmd_weight=2.0)
    loss, t = loss_fn(m, batch)
    expected = 0.01 * t["pair"] + t["correlation"] + 2.0 * t["mmd"] + t["source"]
    assert loss.item() == pytest.approx(expected.item())
    p = m.represent(batch["target"][1], "text")
    assert p.shape == (10, C) and torch.allclose(p.sum(1), torch.ones(10))
    w = calibrate_pair_weight(m, batch)
    assert np.log10(w) == pytest.approx(round(np.log10(w)))  # a power of ten


def test_chtn_loss_gradient_float64():
    m = make_model().double()
    b = make_batch(n=4)
    img = b["target"][0].double().requires_grad_()
    batch = {"target": (img, b["target"][1].double(), b["target"][2]),
             "source": (b["source"][0].double(), b["source"][1])}
    m.eval()  # no dropout, BN with running statistics: a deterministic function
    loss = CHTNLoss(pair_weight=0.01, detach_bandwidth=False)  # the exact gradient, MMD bandwidth included
    assert torch.autograd.gradcheck(lambda x: loss(m, {**batch, "target": (x, *batch["target"][1:])})[0], (img,))


def planted(n=400, seed=0):
    """One latent z drives both views (mixing vectors fixed), plus independent noise."""
    mix = np.random.default_rng(99)
    a, b = mix.normal(size=6), mix.normal(size=5)
    rng = np.random.default_rng(seed)
    z = rng.normal(size=n)
    x = np.outer(2 * z, a) + rng.normal(size=(n, 6))
    y = np.outer(2 * z, b) + rng.normal(size=(n, 5))
    return x, y, z


def test_cca_recovers_planted_correlated_direction():
    x, y, z = planted()
    cca = CCA(n_components=2, reg=0.0).fit(x, y)
    u, v = cca.transform(x, y)
    assert abs(np.corrcoef(u[:, 0], z)[0, 1]) > 0.9
    assert abs(np.corrcoef(v[:, 0], z)[0, 1]) > 0.9
    assert cca.correlations_[0] > 0.8 and cca.correlations_[1] < 0.3  # one planted direction only
    # the first direction is (up to scale) the least-squares predictor of the planted z from x
    best = np.linalg.lstsq(x - x.mean(0), z, rcond=None)[0]
    cos = best @ cca.proj_x_[:, 0] / np.linalg.norm(best) / np.linalg.norm(cca.proj_x_[:, 0])
    assert abs(cos) > 0.95
    # the projections generalise to a fresh draw
    x2, y2, z2 = planted(seed=1)
    u2, v2 = cca.transform(x2, y2)
    assert abs(np.corrcoef(u2[:, 0], z2)[0, 1]) > 0.9 and abs(np.corrcoef(v2[:, 0], z2)[0, 1]) > 0.9


def test_cfa_and_kcca_align_pairs_on_synthetic_data():
    x, y, z = planted(300)
    labels = (z > 0).astype(int)
    for method in (CFA(n_components=1), KCCA("poly", n_components=1), KCCA("rbf", n_components=2)):
        u, v = method.fit(x, y).transform(x, y)
        corr = abs(np.corrcoef(u[:, 0], v[:, 0])[0, 1])
        assert corr > 0.6, method.name
    assert labels.sum() > 0


def test_every_baseline_runs_and_beats_chance_on_separable_data():
    rng = np.random.default_rng(0)
    n, c = 60, 3
    y = np.repeat(np.arange(c), n // c)
    centres_x, centres_t = rng.normal(size=(c, 10)) * 3, rng.normal(size=(c, 8)) * 3
    x = centres_x[y] + rng.normal(size=(n, 10))
    t = centres_t[y] + rng.normal(size=(n, 8))
    for name in BASELINES:
        kw = {"steps": 40, "eval_every": 20, "batch_size": 20, "dropout": 0.2} \
            if name in ("Bimodal AE", "Corr-AE", "Deep-SM") else {}
        method = make_baseline(name, seed=0, **kw).fit(x, t, y, val=(x, t, y))
        ri, rt = method.transform(x, t)
        assert ri.shape[0] == n and rt.shape[0] == n and ri.shape[1] == rt.shape[1]
        assert cross_modal_map(ri, rt, y)["average"] > 0.5, name  # chance is ~0.35
    with pytest.raises(ValueError, match="unknown baseline"):
        make_baseline("CMDN")


def test_stop_rule_minimum_steps_patience_and_cap():
    from clickvision.models.crossmodal_deep import StopRule, fit_to_convergence

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

    def loss_fn(m, batch):
        return (m.w - 1).pow(2).sum()
    data = [torch.zeros(1)] * 4
    flat = lambda m: {"val_map": 0.5}  # noqa: E731 - never improves after the first evaluation
    rule = StopRule(max_steps=100, eval_every=5, patience=2, min_delta=0.0, min_steps=30)
    _, stop = fit_to_convergence(Net(), loss_fn, data, flat, rule, seed=0)
    assert stop["stop_step"] == 30 and not stop["capped"] and stop["best_step"] == 5  # waits for min_steps
    _, stop = fit_to_convergence(Net(), loss_fn, data, flat, StopRule(100, 5, 2, 0.0, 0), seed=0)
    assert stop["stop_step"] == 15  # patience 2 after the first evaluation
    rising = lambda m: {"val_map": float(m.w)}  # noqa: E731 - improves at every evaluation
    _, stop = fit_to_convergence(Net(), loss_fn, data, rising, StopRule(40, 5, 2, 0.0, 0), seed=0)
    assert stop["stop_step"] == 40 and stop["capped"] and stop["best_step"] == 40
    acc = StopRule(1500, 25, 4, 0.002, 200).for_accumulation(16)
    assert (acc.max_steps, acc.eval_every, acc.min_steps, acc.patience) == (94, 2, 12, 4)
    with pytest.raises(ValueError, match="min_steps"):
        StopRule(max_steps=10, min_steps=20)
