"""Paper D on a shared trainable trunk (D.05): what the CF auxiliary loss can move.

What is shared between the label head and the CF head of ``CollaborativeImageClassifier``:

* frozen cached features (``backbone=None``, or a ``Trunk`` with ``n_blocks=0`` or
  ``trainable=False``): only the shared Linear -> ReLU -> Dropout layer (``model.trunk``). A step on
  the CF-reconstruction loss alone moves that layer, so the label head's input changes, but the
  visual features it is computed from do not;
* a trainable ``Trunk`` (``n_blocks >= 1``): the trunk's blocks (the 1x1 conv 320 -> 1280 and its
  batch-norm scale and shift, for one block) *and* the shared Linear layer: the same step changes the
  visual features themselves.
In both cases the label head's own weights get no gradient from the CF loss.
"""
from __future__ import annotations

import copy
import types

import numpy as np
import pandas as pd
import pytest
import torch
from clickvision.experiments.paper_d import trunk as T
from clickvision.experiments.paper_d.data import LabelledItems
from clickvision.losses import cf as losses
from clickvision.models import collab
from clickvision.models.backbone import load_backbone
from clickvision.models.trunk import Trunk


@pytest.fixture(scope="module")
def lite0():
    return load_backbone()


@pytest.fixture(scope="module")
def acts(lite0):
    torch.manual_seed(0)
    with torch.no_grad():
        return lite0.forward_before(torch.randn(6, 3, 64, 64), 1)


def _cf_step(model: collab.CollaborativeImageClassifier, x: torch.Tensor, q: torch.Tensor) -> None:
    """One SGD step on the CF-reconstruction loss alone (eq. 2, uniform weights), every parameter."""
    model.train()
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    opt.zero_grad()
    _, pred_q = model(x)
    per_item = losses.reconstruction_loss(pred_q, q, "paper")
    losses.auxiliary_loss(per_item, torch.ones(len(x)), True).backward()
    assert model.label_head.weight.grad is None  # the label head is not on the CF loss's path
    opt.step()
    model.eval()


def _model(backbone, x) -> collab.CollaborativeImageClassifier:
    torch.manual_seed(0)
    if backbone is None:
        pooled = x.double().numpy()
    else:
        pooled = collab.initial_pooled(backbone, x.numpy())
    return collab.CollaborativeImageClassifier(pooled.shape[1], 3, cf_dim=4, backbone=backbone,
                                               input_mean=pooled.mean(0), input_std=pooled.std(0) + 1e-6)


def test_cf_loss_moves_the_visual_features_through_a_trainable_trunk(lite0, acts):
    model = _model(Trunk(lite0, 1), acts)
    q = torch.randn(len(acts), 4)
    model.eval()
    with torch.no_grad():
        v0, h0 = model.visual_features(acts).clone(), model.shared_features(acts).clone()
    head = copy.deepcopy(model.label_head.state_dict())
    trunk_w = model.backbone.blocks[0][0].weight.detach().clone()
    _cf_step(model, acts, q)
    with torch.no_grad():
        v1, h1 = model.visual_features(acts), model.shared_features(acts)
    assert all(torch.equal(head[k], v) for k, v in model.label_head.state_dict().items())
    assert not torch.equal(model.backbone.blocks[0][0].weight, trunk_w)  # the conv of the trunk moved
    assert (v1 - v0).abs().max() > 1e-4  # the visual features both heads read changed
    assert (h1 - h0).abs().max() > 1e-4  # so did the label head's input
    # the label logits are the unchanged label head on the new input
    with torch.no_grad():
        torch.testing.assert_close(model(acts)[0], model.label_head(h1))


@pytest.mark.parametrize("kind", ["none", "n_blocks=0", "frozen trunk"])
def test_cf_loss_moves_only_the_shared_linear_layer_on_frozen_features(kind, lite0, acts):
    if kind == "frozen trunk":
        backbone, x = Trunk(lite0, 1, trainable=False), acts
    else:
        with torch.no_grad():
            x = Trunk(lite0, 1)(acts)  # the pooled features (the untrained trunk's output)
        backbone = None if kind == "none" else Trunk(lite0, 0)
    model = _model(backbone, x)
    q = torch.randn(len(x), 4)
    with torch.no_grad():
        v0, h0 = model.visual_features(x).clone(), model.shared_features(x).clone()
    head = copy.deepcopy(model.label_head.state_dict())
    shared = copy.deepcopy(model.trunk.state_dict())
    _cf_step(model, x, q)
    with torch.no_grad():
        v1, h1 = model.visual_features(x), model.shared_features(x)
    assert torch.equal(v1, v0)  # the visual features did not move
    assert all(torch.equal(head[k], v) for k, v in model.label_head.state_dict().items())
    assert any(not torch.equal(shared[k], v) for k, v in model.trunk.state_dict().items())
    assert (h1 - h0).abs().max() > 1e-4  # only through the shared Linear layer's output


def test_initial_pooled_is_the_untrained_trunk_output(lite0, acts):
    trunk = Trunk(lite0, 1)
    trunk.train()
    out = collab.initial_pooled(trunk, acts.numpy(), batch_size=4)  # two batches
    assert trunk.training  # mode restored
    with torch.no_grad():
        torch.testing.assert_close(torch.as_tensor(out, dtype=torch.float32),
                                   lite0.forward_from(acts, 1).mean(dim=(2, 3)), rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="no rows"):
        collab.initial_pooled(trunk, acts.numpy()[:0])


def _toy(n: int = 40, c: int = 3, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = rng.random((n, c)) < 0.4
    y[np.arange(n), rng.integers(0, c, n)] = True
    return y


def test_fit_image_model_trains_the_trunk_and_normalises_by_its_initial_output(lite0):
    torch.manual_seed(1)
    with torch.no_grad():
        acts = lite0.forward_before(torch.randn(24, 3, 64, 64), 1).numpy().astype(np.float16)
    y = _toy(24)
    q = np.random.default_rng(0).standard_normal((24, 4))
    trunk = Trunk(lite0, 1)
    w0 = trunk.blocks[0][0].weight.detach().clone()
    pooled = collab.initial_pooled(trunk, acts)
    s = collab.FitSettings(epochs=2, batch_size=8, patience=None)
    model, hist = collab.fit_image_model("mtl", acts, y, acts[:8], y[:8], q=q, seed=0, settings=s, backbone=trunk,
                                         backbone_lr=1e-3)
    assert model.backbone is trunk
    np.testing.assert_allclose(model.input_mean.numpy(), pooled.mean(0), rtol=1e-5, atol=1e-6)
    assert not torch.equal(trunk.blocks[0][0].weight, w0)
    assert len(T.validation_curve(hist)) == 2
    assert collab.predict_scores(model, acts).shape == y.shape


def test_gain_rows_and_arm_rows_oracle():
    rows = []
    for trunk, bump in (("frozen", 0.0), ("trunk", 0.1)):
        for seed in (0, 1):
            for item in (0, 1, 2):
                rows.append(("Image-only", trunk, seed, 0.1, item, 0.5 + 0.01 * item))
                rows.append(("MTL-reconstruct uniform", trunk, seed, 0.1, item, 0.5 + 0.01 * item + bump + 0.01 * seed))
                rows.append(("Image-only", trunk, seed, 1.0, item, 0.9))
    items = pd.DataFrame(rows, columns=["method", "trunk", "seed", "label_ratio", "item", "value"])
    g = T.gain_rows(items, 0.1)
    assert set(g["method"]) == {"gain frozen", "gain trunk"} and len(g) == 12
    by = g.groupby("method")["value"].mean()
    assert by["gain trunk"] - by["gain frozen"] == pytest.approx(0.1)
    assert by["gain frozen"] == pytest.approx(0.005)
    a = T.arm_rows(items, 0.1)
    assert set(a["method"]) == {"Image-only (frozen)", "Image-only (trunk)", "MTL-reconstruct uniform (frozen)",
                                "MTL-reconstruct uniform (trunk)"}
    assert list(a.columns) == ["method", "seed", "item", "value"] and len(a) == 24
    with pytest.raises(ValueError, match="no rows of method"):
        T.gain_rows(items, 1.0)


def test_validation_curve_reads_the_label_stage():
    hist = pd.DataFrame({"step": [1, 2, 2, 4, 4], "epoch": [1, 1, 1, 2, 2],
                         "split": ["train", "val", "val", "val", "train"],
                         "name": ["loss", "mAP", "mAP", "mAP", "loss"], "value": [1.0, 0.2, 0.3, 0.4, 0.9],
                         "stage": ["label", "cf", "label", "label", "label"]})
    c = T.validation_curve(hist)
    assert c["epoch"].tolist() == [1, 2] and c["val_mAP"].tolist() == [0.3, 0.4]


def test_arm_items_reads_cut_activations_by_key(monkeypatch):
    keys = np.array(["a", "b", "c", "d"], dtype=object)
    acts = np.arange(4 * 2 * 1 * 1, dtype=np.float16).reshape(4, 2, 1, 1)
    fake = types.SimpleNamespace(load_openclipart=lambda: types.SimpleNamespace(items=pd.DataFrame({"key": keys})))
    monkeypatch.setattr(T, "openclipart", fake)
    monkeypatch.setattr(T, "trunk_inputs", lambda images, n, **kw: acts)
    items = LabelledItems(np.array(["c", "a"], dtype=object), np.array(["train", "test"]), _toy(2, 2), ["x", "y"],
                          x=np.zeros((2, 5)), unlabelled_keys=np.array(["d"], dtype=object),
                          unlabelled_split=np.array(["train"]), unlabelled_x=np.zeros((1, 5)))
    assert T.arm_items(items, 0) is items
    out = T.arm_items(items, 1)
    np.testing.assert_array_equal(out.x, acts[[2, 0]])
    np.testing.assert_array_equal(out.unlabelled_x, acts[[3]])
    bad = LabelledItems(np.array(["z"], dtype=object), np.array(["train"]), _toy(1, 2), ["x", "y"])
    with pytest.raises(ValueError, match="no cached activation"):
        T.arm_items(bad, 1)


def test_shared_trunk_rejects_bad_arms():
    run = types.SimpleNamespace(items=None)
    with pytest.raises(ValueError, match="arms"):
        T.shared_trunk(run, (0.1,), 0.5, (0,), 1, collab.FitSettings(), arms=("warm",))
    with pytest.raises(ValueError, match="n_blocks"):
        T.shared_trunk(run, (0.1,), 0.5, (0,), 0, collab.FitSettings())


def test_paper_gain_is_table5_toys():
    assert T.paper_mtl_gain() == pytest.approx(0.424 - 0.412)
