"""Paper A on a shared trainable trunk (A.14): the click loss reaches the recogniser's input through the
trunk (and not on frozen features), the trunk loss is eq. (15) as the frozen path computes it, the fixed map
projection is PCA, and the design's helpers (stop rule, gains, intervals, vendors) behave and name bad input."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from clickvision.experiments.paper_a import trunk as T
from clickvision.experiments.paper_a.data import DomainData, PaperAData
from clickvision.experiments.paper_a.methods import MethodSettings
from clickvision.experiments.paper_a.train import (
    ClickLossSpec,
    HeadConfig,
    JointSpec,
    domain_tensors,
    joint_loss,
)
from clickvision.models.backbone import load_backbone
from clickvision.models.mtmdd import SOURCE, TARGET

N_CLASSES, VOCAB = 3, 10
SPLITS = ["train"] * 12 + ["val"] * 6 + ["test"] * 6


@pytest.fixture(scope="module")
def lite0():
    return load_backbone()


def _domain(name: str, lite0, seed: int, clicks: bool) -> tuple[DomainData, np.ndarray]:
    g = torch.Generator().manual_seed(seed)
    images = torch.randn(len(SPLITS), 3, 64, 64, generator=g)
    with torch.no_grad():
        acts = lite0.forward_before(images, 1).half()
        phi = lite0(images).float()
    n = len(SPLITS)
    rng = np.random.default_rng(seed)
    items = pd.DataFrame({"key": [f"{name}:{i}" for i in range(n)], "split": SPLITS})
    v = rng.random((n, VOCAB)).astype(np.float32) if clicks else None
    d = DomainData(name, items, np.arange(n) % N_CLASSES, np.array(SPLITS), phi.numpy(), None, v,
                   np.ones(n, bool) if clicks else None)
    return d, acts.numpy()


@pytest.fixture(scope="module")
def tdata(lite0):
    src, a_s = _domain("source", lite0, 0, True)
    tgt, a_t = _domain("target", lite0, 1, False)
    data = PaperAData(src, tgt, ["a", "b", "c"], [f"w{i}" for i in range(VOCAB)], None, None, {})
    return T.TrunkData(data, 1, {"source": a_s, "target": a_t})


CFG = HeadConfig(embedding="bifc", hidden=16, visual_hidden=8, batch_size=6, dropout=0.0)
SPEC = JointSpec(lam=0.5, mu=1.0, click=ClickLossSpec(tau=0.1), shared=False)


def _source_batch(td: T.TrunkData) -> dict:
    rows = td.data.source.rows("train")
    b = domain_tensors(td.data.source, rows, False, SOURCE)
    b["x"] = torch.from_numpy(td.inputs("source")[rows])
    return b


@pytest.mark.parametrize("shared_trunk", [True, False])
def test_click_loss_alone_changes_the_recognition_input_only_through_the_shared_trunk(shared_trunk, tdata, lite0):
    td = tdata if shared_trunk else tdata.frozen()
    torch.manual_seed(0)
    net = T.build_trunk_net(td, CFG, SPEC, lite0)
    net.train()
    batch = _source_batch(td)
    before = net.recognition_input(batch["x"]).detach().clone()
    psi = {k: v.detach().clone() for k, v in net.net.head.named_parameters()}
    emb = {k: v.clone() for k, v in net.net.embedding.state_dict().items()}
    opt = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=0.5)
    opt.zero_grad()
    T.click_loss_only(net, batch, SPEC).backward()
    opt.step()
    after = net.recognition_input(batch["x"]).detach()
    # the click loss trained the click branch in both cases, and never the recognition head itself
    assert any(not torch.equal(emb[k], v) for k, v in net.net.embedding.state_dict().items())
    assert all(torch.equal(psi[k], v) for k, v in net.net.head.named_parameters())  # (its BN statistics do move)
    if shared_trunk:
        assert net.trunk.trainable
        assert (after - before).abs().max() > 1e-4  # psi's input moved: the trunk carried the click loss
    else:
        assert not net.trunk.trainable
        assert torch.equal(after, before)


def test_untrained_trunk_reads_the_pooled_feature(tdata, lite0):
    net = T.build_trunk_net(tdata, CFG, SPEC, lite0)
    with torch.no_grad():
        phi = net.recognition_input(torch.from_numpy(tdata.inputs("source")))
    np.testing.assert_allclose(phi.numpy(), tdata.data.source.phi, rtol=0, atol=5e-2)  # float16 cut activations
    frozen = tdata.frozen()
    assert frozen.n_blocks == 0 and frozen.inputs("target") is tdata.data.target.phi


def test_trunk_loss_on_frozen_features_is_the_frozen_paths_eq15(tdata, lite0):
    td = tdata.frozen()
    torch.manual_seed(0)
    net = T.build_trunk_net(td, CFG, SPEC, lite0).eval()
    s_rows, t_rows = td.data.source.rows("train"), td.data.target.rows("train")
    ref = {"source": domain_tensors(td.data.source, s_rows, False, SOURCE),
           "target": domain_tensors(td.data.target, t_rows, False, TARGET)}
    ours = {k: {**{n: t for n, t in b.items() if n != "phi"}, "x": b["phi"]} for k, b in ref.items()}
    want = joint_loss(net.net, ref, SPEC, False)
    got = T.trunk_joint_loss(net, ours, SPEC)
    torch.testing.assert_close(got.total, want.total)
    assert set(got.terms) == set(want.terms)


def test_click_loss_gradient_reaches_the_trunk_and_lambda_zero_removes_it(tdata, lite0):
    grads = {}
    for lam in (0.5, 0.0):
        torch.manual_seed(0)
        net = T.build_trunk_net(tdata, CFG, SPEC, lite0).train()
        spec = JointSpec(lam=lam, mu=1.0, click=SPEC.click, shared=False)
        b = _source_batch(tdata)
        loss = lam * T.click_loss_only(net, b, spec)  # the click term's share of eq. (15)
        if loss.requires_grad:
            loss.backward()
        grads[lam] = sum(float(p.grad.abs().sum()) for p in net.trunk.parameters() if p.grad is not None)
    assert grads[0.5] > 0 and grads[0.0] == 0


def test_map_projection_is_pca_of_training_maps():
    from sklearn.decomposition import PCA

    rng = np.random.default_rng(0)
    maps = rng.normal(size=(20, 6, 3, 3)).astype(np.float32) * np.arange(1, 7)[None, :, None, None]
    proj = T.MapProjection.fit(maps, 3)
    assert proj.out_channels == 3 and not list(proj.parameters())  # fixed: buffers only
    out = proj(torch.from_numpy(maps)).numpy()
    assert out.shape == (20, 3, 3, 3)
    vectors = maps.transpose(0, 2, 3, 1).reshape(-1, 6)
    ref = PCA(3, svd_solver="full").fit_transform(vectors).reshape(20, 3, 3, 3).transpose(0, 3, 1, 2)
    for c in range(3):  # components agree up to sign
        sign = np.sign((out[:, c] * ref[:, c]).sum())
        np.testing.assert_allclose(sign * out[:, c], ref[:, c], rtol=1e-3, atol=1e-3)
    with pytest.raises(ValueError, match="n_channels"):
        T.MapProjection.fit(maps, 7)
    with pytest.raises(ValueError, match=r"\(N, C, h, w\)"):
        T.MapProjection.fit(maps[:, :, 0], 2)
    with pytest.raises(ValueError, match="MapProjection expects"):
        proj(torch.zeros(2, 5, 3, 3))


def test_conv_embedding_on_the_trunk_reads_the_projected_map(tdata, lite0):
    cfg = CFG.scaled(embedding="conv_bifc", conv_kernels=4)
    net = T.build_trunk_net(tdata, cfg, SPEC, lite0, map_channels=8)
    assert net.projection is not None and net.projection.out_channels == 8
    with torch.no_grad():
        phi, omega = net.visual(torch.from_numpy(tdata.inputs("source")[:4]))
    assert phi.shape == (4, 1280) and omega.shape == (4, 8, 2, 2)
    full = T.build_trunk_net(tdata, cfg, SPEC, lite0, map_channels=0)
    assert full.projection is None and full.net.embedding.conv[0].in_channels == 1280
    with pytest.raises(ValueError, match="omega"):
        T.build_trunk_net(tdata.frozen(), cfg, SPEC, lite0).visual(torch.from_numpy(tdata.data.source.phi[:2]))


def test_training_run_records_curves_items_and_stop(tdata, lite0):
    stop = T.StopRule(max_epochs=3, patience=1)
    rows, curve = T.trunk_run(tdata, CFG, SPEC, stop, seed=0, backbone=lite0, model="MTMDD-VM", trunk="trunk")
    frame = pd.DataFrame(rows)
    acc = frame.set_index("metric")["value"]
    items = frame[frame["metric"] == "correct_t"]
    assert len(items) == 6 and items["value"].isin([0.0, 1.0]).all()
    assert acc["acc_t"] == pytest.approx(items["value"].mean())  # the per-image scores average to Acc-T
    assert 1 <= acc["epochs_run"] <= 3 and 0 <= acc["best_epoch"] <= acc["epochs_run"]
    assert set(curve["name"]) == {"val_acc", "val_acc_s", "val_acc_t"} and (curve["model"] == "MTMDD-VM").all()
    wide = curve.pivot_table(index="epoch", columns="name", values="value")
    np.testing.assert_allclose(wide["val_acc"], (wide["val_acc_s"] + wide["val_acc_t"]) / 2)


def _rows(values: dict[tuple[str, str], list[float]], seeds=(0, 1)) -> pd.DataFrame:
    out = []
    for (model, trunk), vals in values.items():
        for seed in seeds:
            out += [{"model": model, "trunk": trunk, "seed": seed, "metric": f"correct_{d}", "item": f"i{i}",
                     "value": float(v)} for d in ("s", "t") for i, v in enumerate(vals)]
    return pd.DataFrame(out)


def test_gain_items_and_arm_intervals():
    rows = _rows({("MTMDD-VM", "trunk"): [1, 1, 1, 0], ("recognition-only", "trunk"): [1, 0, 0, 0],
                  ("MTMDD-VM", "frozen"): [1, 0, 1, 0], ("recognition-only", "frozen"): [1, 0, 1, 1]})
    g = T.gain_items(rows, "t")
    mean = g.groupby("method")["value"].mean()
    assert mean["gain, shared trunk"] == pytest.approx(0.5) and mean["gain, frozen features"] == pytest.approx(-0.25)
    assert len(g) == 2 * 2 * 4
    iv = T.arm_intervals(rows, n_resamples=200)
    hit = iv[(iv["model"] == "MTMDD-VM") & (iv["trunk"] == "trunk") & (iv["domain"] == "t")].iloc[0]
    assert hit["acc"] == pytest.approx(0.75) and hit["ci_low"] <= 0.75 <= hit["ci_high"]
    claims = T.claims_shared_trunk(rows, MethodSettings(lam=0.4, mu=1.0))
    ids = [c.claim_id for c, _ in claims]
    assert ids == ["A14-trunk-click-loss-helps-target", "A14-trunk-click-loss-helps-source",
                   "A14-sharing-adds-to-click-gain"]
    first = claims[0][0]
    assert first.paper_effect == pytest.approx((73.3 - 71.9) / 100)  # Table VII, MTMDD-VM lambda 0.4 vs 0


def test_bad_input_is_named(tdata):
    with pytest.raises(ValueError, match="source_vendor"):
        T.check_vendors("twitter", "google")
    with pytest.raises(ValueError, match="target_vendor"):
        T.check_vendors("google", "google")
    with pytest.raises(ValueError, match="n_blocks"):
        T.load_trunk_data("default", -1)
    with pytest.raises(ValueError, match="profile"):
        T.load_trunk_data("huge", 1)
    with pytest.raises(ValueError, match="StopRule.patience"):
        T.StopRule(patience=0)
    with pytest.raises(ValueError, match="min_epochs"):
        T.StopRule(max_epochs=2, min_epochs=3)
    with pytest.raises(ValueError, match="model"):
        T.model_spec("TDL", MethodSettings())
    with pytest.raises(ValueError, match="n_blocks = 0"):
        T.shared_trunk_design(tdata.frozen(), CFG, MethodSettings(), [0], T.StopRule())
    with pytest.raises(ValueError, match="models"):
        T.shared_trunk_design(tdata, CFG, MethodSettings(), [0], T.StopRule(), models=["VGG"])
    with pytest.raises(ValueError, match="domain"):
        tdata.domain("middle")
    assert T.model_spec("recognition-only", MethodSettings(lam=0.4, mu=0.5)).lam == 0.0
