"""Trainable trunk: a network cut between blocks runs exactly as the whole, cached cut
activations feed a trainable copy of the last blocks, and two branches on one trunk share it
(a loss on one changes the other's output; a frozen trunk does not)."""
from __future__ import annotations

import copy
import pickle

import numpy as np
import pandas as pd
import pytest
import torch
from clickvision.data.base import ImageSet
from clickvision.features import check_kind, cut_kind, extract_features
from clickvision.models.backbone import load_backbone
from clickvision.models.trunk import PROFILE_BLOCKS, Trunk, trunk_blocks, trunk_inputs
from torch import nn


@pytest.fixture(scope="module")
def lite0():
    return load_backbone()


@pytest.fixture(scope="module")
def images():
    # fixed, not drawn from the global RNG (which tests ran before on a worker changed the draw). The gradient
    # check below failed in two full-suite xdist runs on an AVX2 CPU (once 0.6 % of blocks.0.0.weight's
    # gradient norm) and passed in every isolated run; 16 fixed draws give at most 7e-7. Cause not found.
    return torch.randn(4, 3, 64, 64, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("name", ["efficientnet-lite0", "resnet18", "vgg11", "mobilenet_v2"])
def test_cut_anywhere_reproduces_the_whole_network(name, lite0, images):
    bb = lite0 if name == "efficientnet-lite0" else load_backbone(name, pretrained=False)
    with torch.no_grad():
        whole = bb.forward_features(images)
        for n in range(1, len(bb.blocks) + 1):
            assert torch.equal(bb.forward_from(bb.forward_before(images, n), n), whole), (name, n)
    with pytest.raises(ValueError, match="n_last"):
        bb.cut_index(len(bb.blocks) + 1)
    with pytest.raises(ValueError, match="n_last"):
        bb.cut_index(0)


@pytest.mark.parametrize("n", [0, 1, 2, 3])
def test_untrained_trunk_on_cut_activations_is_the_pooled_feature(n, lite0, images):
    trunk = Trunk(lite0, n)
    with torch.no_grad():
        pooled = lite0(images)
        acts = pooled if n == 0 else lite0.forward_before(images, n)
        out = trunk(acts)
    assert out.shape == pooled.shape and out.dtype == torch.float32
    torch.testing.assert_close(out, pooled, rtol=0, atol=1e-5)
    # trainable copy, not the backbone's own blocks
    assert trunk.trainable == (n > 0)
    if n:
        assert all(p.data_ptr() != q.data_ptr() for p in trunk.parameters() for q in lite0.parameters())
        assert trunk.feature_kind() == f"cut{n}"
        assert len(trunk.block_names) == n and trunk.block_names[-1] == "head"


def _step(params, loss) -> None:
    opt = torch.optim.SGD([p for p in params if p.requires_grad], lr=0.5)
    opt.zero_grad()
    loss.backward()
    opt.step()


@pytest.mark.parametrize("trainable", [True, False])
def test_a_loss_on_one_branch_moves_the_other_only_through_a_trainable_trunk(trainable, lite0, images):
    torch.manual_seed(0)
    trunk = Trunk(lite0, 1, trainable=trainable)
    head_a, head_b = nn.Linear(trunk.out_dim, 3), nn.Linear(trunk.out_dim, 5)
    with torch.no_grad():
        acts = lite0.forward_before(images, 1)
    trunk.train()
    before = head_a(trunk(acts)).detach().clone()
    weights_a = copy.deepcopy(head_a.state_dict())
    loss_b = nn.functional.cross_entropy(head_b(trunk(acts)), torch.tensor([0, 1, 2, 3]))
    _step([*trunk.parameters(), *head_a.parameters(), *head_b.parameters()], loss_b)
    after = head_a(trunk(acts)).detach()
    assert all(torch.equal(weights_a[k], v) for k, v in head_a.state_dict().items())  # branch A's own weights untouched
    if trainable:
        assert (after - before).abs().max() > 1e-4  # branch A's output moved through the shared trunk
    else:
        assert torch.equal(after, before)


def test_frozen_batch_norm_statistics_and_state(lite0, images):
    trunk = Trunk(lite0, 2).train()
    bn = [m for m in trunk.modules() if isinstance(m, nn.BatchNorm2d)]
    assert bn and all(not m.training for m in bn)  # running stats fixed in train mode
    stats = [m.running_mean.clone() for m in bn]
    with torch.no_grad():
        trunk(lite0.forward_before(images, 2))
    assert all(torch.equal(s, m.running_mean) for s, m in zip(stats, bn))
    live = Trunk(lite0, 2, freeze_bn=False).train()
    assert all(m.training for m in live.modules() if isinstance(m, nn.BatchNorm2d))
    # only the tail is in the state; the trunk pickles (worker processes) and deep-copies (best-state restore)
    assert all(k.startswith("blocks.") for k in trunk.state_dict())
    assert sum(p.numel() for p in trunk.parameters()) < sum(p.numel() for p in lite0.parameters()) / 3
    clone = pickle.loads(pickle.dumps(trunk))
    acts = torch.randn(2, 192, 2, 2)
    with torch.no_grad():
        torch.testing.assert_close(clone.eval()(acts), trunk.eval()(acts))
        torch.testing.assert_close(copy.deepcopy(trunk)(acts), trunk(acts))


def test_bad_inputs_are_named(lite0):
    with pytest.raises(ValueError, match="n_blocks"):
        Trunk(lite0, -1)
    with pytest.raises(ValueError, match="n_last"):
        Trunk(lite0, 99)
    with pytest.raises(ValueError, match="pooled features"):
        Trunk(lite0, 0)(torch.zeros(2, 7))
    with pytest.raises(ValueError, match="cut1"):
        Trunk(lite0, 1)(torch.zeros(2, 1280))
    with pytest.raises(ValueError, match="kind"):
        check_kind("cut0")
    with pytest.raises(ValueError, match="kind"):
        check_kind("conv")
    assert check_kind("map") is None and check_kind("cut12") == 12 and cut_kind(2) == "cut2"
    with pytest.raises(ValueError, match="profile"):
        trunk_blocks("huge")
    assert trunk_blocks("default") == PROFILE_BLOCKS["default"] and trunk_blocks("paper", 0) == 0


def test_cut_features_are_cached_and_feed_the_trunk(tmp_path, lite0):
    pix = np.random.default_rng(0).integers(0, 256, size=(3, 40, 40, 3), dtype=np.uint8)
    table = pd.DataFrame({"key": ["k0", "k1", "k2"], "path": [""] * 3, "label": ["a", "b", "a"], "split": ["train"] * 3})
    ims = ImageSet("toy[train]", table, pixels=pix)
    cut = trunk_inputs(ims, 2, image_size=64, cache_dir=tmp_path)
    assert cut.dtype == np.float16 and cut.shape == (3, 192, 2, 2)
    assert list((tmp_path / "toy").glob("*__cut2__*.npy"))
    pooled = extract_features(ims, image_size=64, kind="pooled", cache_dir=tmp_path)
    with torch.no_grad():
        out = Trunk(lite0, 2)(torch.from_numpy(cut)).numpy()
    np.testing.assert_allclose(out, pooled, rtol=0, atol=5e-2)  # float16 cache
    assert np.array_equal(trunk_inputs(ims, 0, image_size=64, cache_dir=tmp_path), pooled)


def test_one_pass_for_several_kinds_equals_separate_passes(tmp_path, lite0):
    from clickvision.features import compute_features, extract_kinds

    pix = np.random.default_rng(1).integers(0, 256, size=(5, 40, 40, 3), dtype=np.uint8)
    table = pd.DataFrame({"key": [f"k{i}" for i in range(5)], "path": [""] * 5, "label": ["a"] * 5,
                          "split": ["train"] * 5})
    ims = ImageSet("toy[all]", table, pixels=pix)
    kinds = ["pooled", "map", "cut1", "cut2"]
    together = extract_kinds(ims, kinds, lite0, image_size=64, batch_size=2, cache_dir=tmp_path)
    for kind in kinds:
        alone = compute_features(ims, lite0, 64, kind, batch_size=2)
        assert together[kind].dtype == alone.dtype and np.array_equal(together[kind], alone), kind
        # each kind cached under the key a one-kind call uses
        assert np.array_equal(extract_features(ims, lite0, image_size=64, kind=kind, cache_dir=tmp_path), alone)
    assert len(list((tmp_path / "toy").glob("*.npy"))) == 4


@pytest.mark.parametrize("n", [1, 2])
def test_folded_pointwise_block_equals_the_modules_in_value_and_gradient(n, lite0, images):
    """The 1x1 conv + frozen batch norm run as one matrix product (the default) gives the module
    path's output and the same gradient on every parameter, to float rounding."""
    with torch.no_grad():
        acts = lite0.forward_before(images, n)
    outs, grads = [], []
    for fold in (True, False):
        torch.manual_seed(0)
        trunk = Trunk(lite0, n, fold_pointwise=fold).train()
        head = nn.Linear(trunk.out_dim, 3)
        with torch.no_grad():  # move the batch norm off its ImageNet values, so its fold is exercised
            for m in trunk.modules():
                if isinstance(m, nn.BatchNorm2d):
                    m.weight.mul_(1.5)
                    m.bias.add_(0.1)
        out = trunk(acts)
        nn.functional.cross_entropy(head(out), torch.tensor([0, 1, 2, 0])).backward()
        outs.append(out.detach())
        grads.append({k: p.grad.clone() for k, p in trunk.named_parameters()})
    torch.testing.assert_close(outs[0], outs[1], rtol=1e-5, atol=1e-5)
    assert grads[0].keys() == grads[1].keys() and len(grads[0]) >= 3
    for k in grads[0]:  # float rounding, judged on the scale of each gradient (an elementwise rtol fails on
        # entries near zero)
        a, b = grads[0][k].double(), grads[1][k].double()
        scale = float(b.abs().max()) or 1.0
        assert float((a - b).norm() / (b.norm() + 1e-30)) < 1e-4, k
        torch.testing.assert_close(a, b, rtol=0, atol=1e-4 * scale, msg=k)
    # the map keeps its (N, C, h, w) shape
    trunk = Trunk(lite0, 1)
    with torch.no_grad():
        assert trunk.feature_map(lite0.forward_before(images, 1)).shape[:2] == (4, trunk.out_dim)


def test_batch_norm_that_learns_its_statistics_is_not_folded(lite0, images):
    with torch.no_grad():
        acts = lite0.forward_before(images, 1)
    live = [Trunk(lite0, 1, freeze_bn=False, fold_pointwise=fold).train() for fold in (True, False)]
    with torch.no_grad():
        assert torch.equal(live[0](acts), live[1](acts))  # batch statistics: the module path
    assert torch.equal(live[0].blocks[0][1].running_mean, live[1].blocks[0][1].running_mean)
