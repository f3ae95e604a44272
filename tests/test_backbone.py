"""Backbones: the packaged EfficientNet-Lite0 recognises a known photo; maps, pooling,
preprocessing, local weights files and the trainable tail behave as documented."""
from __future__ import annotations

import pytest
import torch
from PIL import Image

from clickvision.models.backbone import (
    BACKBONES, TFLITE_MEAN, TFLITE_STD, Backbone, load_backbone, load_state_dict_file,
)

IMAGENET_CAT_CLASSES = range(281, 286)  # tabby, tiger cat, Persian, Siamese, Egyptian cat


@pytest.fixture(scope="module")
def lite0() -> Backbone:
    return load_backbone("efficientnet-lite0")


@pytest.fixture(scope="module")
def cat_image() -> Image.Image:
    skimage_data = pytest.importorskip("skimage.data")
    return Image.fromarray(skimage_data.chelsea())


@pytest.mark.parametrize("image_size,side", [(224, 7), (128, 4)])
def test_efficientnet_lite0_classifies_the_cat_photo(lite0, cat_image, image_size, side):
    x = lite0.transform(image_size)(cat_image)[None]
    with torch.inference_mode():
        logits = lite0.classify(x)
        fmap = lite0.forward_features(x)
        pooled = lite0.pool(fmap)
        head_logits = lite0.net._fc(pooled)
    probs = logits.softmax(dim=1)[0]
    assert int(probs.argmax()) in IMAGENET_CAT_CLASSES
    # measured 0.885 (224 px) and 0.987 (128 px) with TF-Lite scaling
    assert float(probs[281:286].sum()) > 0.8
    assert fmap.shape == (1, 1280, side, side) and pooled.shape == (1, 1280)
    torch.testing.assert_close(pooled, fmap.mean(dim=(2, 3)))
    # the ImageNet head on our pooled vector gives the network's own logits
    torch.testing.assert_close(head_logits, logits, rtol=1e-4, atol=1e-4)


def test_lite0_any_input_size(lite0):
    assert lite0.pretrained and lite0.feature_dim == 1280
    x = torch.randn(2, 3, 96, 80)  # dynamic 'same' padding: not only 224 px
    with torch.inference_mode():
        assert lite0.forward_features(x).shape == (2, 1280, 3, 3)
        assert lite0(x).shape == (2, 1280)
    assert lite0.feature_shape(64) == (1280, 2, 2)


def test_tflite_preprocessing_hand_values(lite0):
    assert lite0.mean == pytest.approx(TFLITE_MEAN) and lite0.std == pytest.approx(TFLITE_STD)
    tf = lite0.transform(64)
    white = tf(Image.new("RGB", (80, 40), (255, 255, 255)))
    black = tf(Image.new("RGB", (80, 40), (0, 0, 0)))
    assert white.shape == (3, 64, 64)
    torch.testing.assert_close(white, torch.ones(3, 64, 64))             # (1 - 127/255) / (128/255)
    torch.testing.assert_close(black, torch.full((3, 64, 64), -127 / 128))  # (0 - 127/255) / (128/255)
    with pytest.raises(ValueError, match="image_size"):
        lite0.transform(16)


def test_lite0_blocks_cover_every_feature_parameter(lite0):
    names = list(lite0.blocks)
    assert names[0] == "stem" and names[-1] == "head" and len(names) == 18
    in_blocks = {id(p) for b in lite0.blocks.values() for p in b.parameters()}
    head = {id(p) for p in lite0.net._fc.parameters()}
    assert in_blocks | head == {id(p) for p in lite0.parameters()}


@pytest.mark.parametrize("name,dim", [("resnet18", 512), ("mobilenet_v2", 1280), ("vgg11", 512)])
def test_torchvision_options_give_maps_and_vectors(name, dim):
    torch.manual_seed(0)
    bb = load_backbone(name, pretrained=False)
    assert not bb.pretrained and bb.weights_source == "random" and bb.feature_dim == dim
    x = torch.randn(2, 3, 64, 64)
    with torch.inference_mode():
        fmap = bb.forward_features(x)
        assert fmap.shape == (2, dim, 2, 2)  # stride 32
        assert bb(x).shape == (2, dim)
        assert bb.classify(x).shape == (2, 1000)
    assert len(bb.blocks) >= 5
    if name == "vgg11":
        assert list(bb.blocks) == ["conv1", "conv2", "conv3", "conv4", "conv5"]  # conv5 ends at pool5


def test_torchvision_weights_need_a_local_file(tmp_path):
    with pytest.raises(ValueError, match="weights_path"):
        load_backbone("resnet18")
    missing = tmp_path / "nope.pth"
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        load_backbone("resnet18", weights_path=missing)
    with pytest.raises(ValueError, match="unknown backbone"):
        load_backbone("alexnet")


def test_weights_path_round_trip_and_mismatch(tmp_path):
    torch.manual_seed(1)
    src = load_backbone("mobilenet_v2", pretrained=False)
    f = tmp_path / "mnv2.pth"
    torch.save({"state_dict": src.net.state_dict()}, f)
    loaded = load_backbone("mobilenet_v2", weights_path=f)
    assert loaded.pretrained and loaded.weights_source == str(f)
    for (k, a), (_, b) in zip(src.net.state_dict().items(), loaded.net.state_dict().items()):
        assert torch.equal(a, b), k
    assert loaded.fingerprint() == src.fingerprint()
    with pytest.raises(ValueError, match="mnv2.pth.*does not fit resnet18"):
        load_backbone("resnet18", weights_path=f)
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="junk.pth"):
        load_state_dict_file(junk)


def test_trainable_tail_freezes_the_rest_and_their_batchnorm():
    torch.manual_seed(2)
    bb = load_backbone("resnet18", pretrained=False)
    blocks = bb.blocks
    params = bb.trainable_tail(2)
    tail = list(blocks.values())[-2:]
    assert {id(p) for p in params} == {id(p) for b in tail for p in b.parameters()}
    assert all(p.requires_grad for p in params)
    assert sum(p.requires_grad for p in bb.parameters()) == len(params)
    bb.train()
    assert not blocks["stem"][1].training and not blocks["layer3.1"].bn1.training  # frozen: eval BN
    assert blocks["layer4.0"].bn1.training and blocks["layer4.1"].bn1.training
    bb(torch.randn(2, 3, 64, 64)).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in params)
    assert all(p.grad is None for p in bb.parameters() if not p.requires_grad)
    assert bb.trainable_tail(0) == [] and not any(p.requires_grad for p in bb.parameters())
    everything = bb.trainable_tail(None)
    assert len(everything) == sum(1 for b in blocks.values() for _ in b.parameters())
    with pytest.raises(ValueError, match="trainable_tail"):
        bb.trainable_tail(-1)


def test_fingerprint_tracks_the_weights():
    torch.manual_seed(3)
    bb = load_backbone("resnet18", pretrained=False)
    before = bb.fingerprint()
    assert bb.fingerprint() == before
    with torch.no_grad():
        bb.net.layer4[1].conv2.weight[0, 0, 0, 0] += 1.0
    assert bb.fingerprint() != before

