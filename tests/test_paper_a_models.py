"""Paper A networks: word embeddings, the shared / unshared classifier, the joint loss, the
end-to-end backbone split; and a tiny end-to-end training run on synthetic data."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

from clickvision.click.features import WordClickMatrix, click_tfidf
from clickvision.experiments.paper_a import train as T
from clickvision.experiments.paper_a.data import DomainData, PaperAData
from clickvision.models.mtmdd import (EMBEDDINGS, SOURCE, TARGET, BackboneSplit, MTMDDNet, RecognitionHead,
                                      WordEmbedding)

C, H, W, K, N_CLASSES = 12, 3, 3, 7, 3


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _inputs(n: int = 8, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, C, generator=g), torch.randn(n, C, H, W, generator=g)


@pytest.mark.parametrize("kind", EMBEDDINGS)
def test_embeddings_shapes_and_inputs(kind):
    torch.manual_seed(0)
    emb = WordEmbedding(kind, C, K, hidden=5, conv_kernels=4, conv_size=3, pool=2)
    phi, omega = _inputs()
    assert emb(phi, omega).shape == (8, K)
    assert emb.reads_map == kind.startswith("conv")
    assert set(emb.layers) == ({"E1"} if emb.reads_map else set()) | ({"E2"} if "bifc" in kind else set()) | {"E3"}
    if emb.reads_map:
        with pytest.raises(ValueError, match="conv map"):
            emb(phi, None)
        # the CONV variants read omega, not phi
        assert torch.equal(emb.eval()(phi, omega), emb(torch.zeros_like(phi), omega))
    else:
        with pytest.raises(ValueError, match="pooled vector"):
            emb(None, omega)


def test_linear_embedding_is_linear_and_output_relu_flag():
    torch.manual_seed(0)
    emb = WordEmbedding("fc", C, K)
    phi, _ = _inputs()
    a, b = phi[:4], phi[4:]
    lin = emb(a + b) - emb(a) - emb(b) + emb(torch.zeros_like(a))
    assert lin.abs().max() < 1e-5  # E phi: affine in phi (TDL [7])
    relu = WordEmbedding("bifc", C, K, hidden=5, output_relu=True)
    assert (relu(phi) >= 0).all()
    with pytest.raises(ValueError, match="kind"):
        WordEmbedding("rnn", C, K)
    with pytest.raises(ValueError, match="conv_kernels"):
        WordEmbedding("conv_fc", C, K, conv_kernels=0)


def test_shared_classifier_really_shares_parameters():
    torch.manual_seed(0)
    shared = RecognitionHead(C, K, N_CLASSES, shared_classifier=True, visual_hidden=4).eval()
    phi, _ = _inputs()
    v = torch.randn(8, K)
    assert not hasattr(shared, "target_classifier")
    assert torch.equal(shared(phi, v, SOURCE), shared(phi, v, TARGET))
    # one classifier: its parameters get gradient from target rows
    shared.train()
    shared(phi, v, torch.full((8,), TARGET)).sum().backward()
    assert shared.classifier.weight.grad.abs().sum() > 0


def test_unshared_classifier_has_its_own_parameters():
    torch.manual_seed(0)
    head = RecognitionHead(C, K, N_CLASSES, shared_classifier=False, visual_hidden=4).eval()
    phi, _ = _inputs()
    v = torch.randn(8, K)
    assert head.classifier.weight.data_ptr() != head.target_classifier.weight.data_ptr()
    assert not torch.equal(head(phi, v, SOURCE), head(phi, v, TARGET))
    domain = torch.tensor([SOURCE] * 4 + [TARGET] * 4)
    mixed = head(phi, v, domain)
    assert torch.equal(mixed[:4], head(phi, v, SOURCE)[:4]) and torch.equal(mixed[4:], head(phi, v, TARGET)[4:])
    # target rows train only the target classifier
    head.train()
    head(phi, v, torch.full((8,), TARGET)).sum().backward()
    assert head.classifier.weight.grad is None or head.classifier.weight.grad.abs().sum() == 0
    assert head.target_classifier.weight.grad.abs().sum() > 0


def test_network_build_variants():
    net = MTMDDNet.build(N_CLASSES, C, K, embedding="conv_bifc", hidden=5, conv_kernels=4, visual_hidden=4)
    phi, omega = _inputs()
    out = net(phi, omega, SOURCE)
    assert out["click"].shape == (8, K) and out["logits"].shape == (8, N_CLASSES)
    bare = MTMDDNet.build(0, C, K, embedding="fc")
    assert bare.head is None and set(bare(phi)) == {"click"}
    visual_only = MTMDDNet.build(N_CLASSES, C, K, embedding=None, use_click=False, visual_hidden=0)
    assert visual_only.embedding is None and set(visual_only(phi)) == {"logits"}
    with pytest.raises(ValueError):
        MTMDDNet(None, None)
    with pytest.raises(ValueError, match="both be False"):
        RecognitionHead(C, K, N_CLASSES, use_visual=False, use_click=False)


# --- a tiny synthetic PaperAData: the joint loss and training --------------------------------------

def tiny_data(n: int = 24, seed: int = 0) -> PaperAData:
    rng = np.random.default_rng(seed)
    split = np.array(["train", "train", "val", "test"] * (n // 4))

    def domain(name: str, clicks: bool) -> DomainData:
        y = np.arange(n) % N_CLASSES
        phi = (rng.normal(size=(n, C)) + y[:, None]).astype(np.float32)
        omega = rng.normal(size=(n, C, H, W)).astype(np.float16)
        items = pd.DataFrame({"key": [f"{name}{i}" for i in range(n)], "label": y.astype(str)})
        v = valid = None
        if clicks:
            v = (rng.random((n, K)) * (rng.random((n, K)) > 0.5)).astype(np.float32)
            v[0] = 0.0  # one zero row (masked)
            valid = v.sum(1) > 0
        return DomainData(name, items, y.astype(np.int64), split, phi, omega, v, valid, np.zeros(n, bool))

    src, tgt = domain("source", True), domain("target", False)
    wc = WordClickMatrix(sp.csr_matrix(src.clicks, dtype=np.float64), src.items["key"].to_numpy(object),
                         [f"w{j}" for j in range(K)], np.ones(K), split == "train")
    return PaperAData(src, tgt, [str(c) for c in range(N_CLASSES)], wc.vocabulary, wc, click_tfidf(wc, variant="code"))


def _joint_batch(data: PaperAData):
    s = T.domain_tensors(data.source, data.source.rows("train"), True, SOURCE)
    t = T.domain_tensors(data.target, data.target.rows("train"), True, TARGET)
    return {"source": s, "target": t}


CFG = T.HeadConfig(hidden=6, conv_kernels=4, visual_hidden=5, epochs=2, recognizer_epochs=2, batch_size=8,
                   recognizer_batch_size=8)


def test_joint_loss_target_rows_get_no_click_gradient():
    data = tiny_data()
    torch.manual_seed(0)
    net = T.build_joint_net(data, CFG, T.JointSpec(lam=0.4, mu=1.0, shared=False))
    batch = _joint_batch(data)
    captured = {}

    def hook(module, inputs, output):
        output.retain_grad()
        captured["v_hat"] = output

    net.embedding.register_forward_hook(hook)
    out = T.joint_loss(net, batch, T.JointSpec(lam=0.4, mu=1.0, shared=False), reads_map=True)
    n = len(batch["source"]["y"])
    click = out.terms["count"] + out.terms["position"]
    (g,) = torch.autograd.grad(click, captured["v_hat"], retain_graph=True)
    assert g[n:].abs().sum() == 0 and g[:n].abs().sum() > 0  # target rows: no click loss
    (g_t,) = torch.autograd.grad(out.terms["target"], captured["v_hat"])
    assert g_t[n:].abs().sum() > 0  # ... but their softmax term does train the embedding


def test_mdd_vm_unshared_source_classifier_gets_no_gradient():
    data = tiny_data()
    torch.manual_seed(0)
    spec = T.JointSpec(lam=1.0, mu=1.0, shared=False)
    net = T.build_joint_net(data, CFG, spec)
    T.joint_loss(net, _joint_batch(data), spec, reads_map=True).total.backward()
    assert net.head.classifier.weight.grad is None or net.head.classifier.weight.grad.abs().sum() == 0
    assert net.head.target_classifier.weight.grad.abs().sum() > 0


def test_training_runs_are_deterministic():
    data = tiny_data()
    with T.torch_threads(1):
        a = T.train_joint(data, CFG, T.JointSpec(lam=0.4, shared=True), seed=3).history
        b = T.train_joint(data, CFG, T.JointSpec(lam=0.4, shared=True), seed=3).history
        pred = T.train_click_predictor(data, CFG, T.ClickLossSpec(tau=0.1), seed=0, kind="bifc", gd_steps={2})
        acc = T.recognition_accuracy(data.source, CFG, T.predict_clicks(pred.model, data.source), True, 0, N_CLASSES)
    pd.testing.assert_frame_equal(a, b)
    assert set(pred.grad_terms["term"]) == {"count", "position"}
    assert set(acc) == {"val", "test", "test_correct", "val_correct"} and all(0 <= acc[k] <= 1 for k in ("val", "test"))
    assert acc["test_correct"].mean() == pytest.approx(acc["test"])  # per test image, its mean the accuracy


def test_backbone_split_reproduces_the_backbone():
    from clickvision.models.backbone import load_backbone

    bb = load_backbone()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        full = bb.forward_features(x)
        split = BackboneSplit(bb, 3)
        bb.eval()
        parts = split(split.prefix(x))
    torch.testing.assert_close(parts, full, rtol=1e-4, atol=1e-5)
    assert split.names[split.cut:] == ["_blocks.14", "_blocks.15", "head"]
    assert all(p.requires_grad for p in split.layer("head").parameters())
    assert not any(p.requires_grad for p in split.layer("_blocks.13").parameters())
    # end to end: the click loss reaches the trainable tail, not the frozen part
    from clickvision.models.mtmdd import EndToEndClickNet

    net = EndToEndClickNet(split, MTMDDNet(WordEmbedding("conv_bifc", bb.feature_dim, K, 4, 4, 3, 2), None))
    net.train()
    out = net(split.prefix(x))["click"]
    assert out.shape == (2, K)
    out.pow(2).sum().backward()
    assert split.layer("_blocks.14")._project_conv.weight.grad.abs().sum() > 0
    assert split.layer("_blocks.13")._project_conv.weight.grad is None


def test_head_config_validates():
    with pytest.raises(ValueError, match="embedding"):
        T.HeadConfig(embedding="lstm")
    with pytest.raises(ValueError, match="epochs"):
        T.HeadConfig(epochs=0)
    with pytest.raises(ValueError, match="dropout"):
        T.HeadConfig().scaled(dropout=1.0)
    assert T.HeadConfig().scaled(hidden=8).hidden == 8


def test_tdl_and_joint_experiments_on_tiny_data():
    from clickvision.experiments.paper_a import core as A
    from clickvision.experiments.paper_a import joint as J

    data = tiny_data()
    with T.torch_threads(1):
        rows, _ = A.tdl_run(data, CFG, T.ClickLossSpec(tau=0.1), 0, "bifc", ("C", "V+C"), gd_steps={1})
        table = J.multitask_table(data, CFG, [0.4], [0])
        sweep = J.multidomain_sweep(data, CFG, [0.5, 1.0], [0])
    got = {(r["representation"], r["metric"]) for r in rows}
    assert {("click", "rmse_s"), ("click", "ratio"), ("C", "acc_t"), ("V+C", "acc_s")} <= got
    # Table VII: lambda = 1 is added; dAcc-T is each lambda's Acc-T minus the same seed's lambda = 1 Acc-T
    assert set(table["lam"]) == {0.4, 1.0} and set(table["model"]) == {"MTMDD-VM", "MDD-VM", "MTMDD-VM*", "MDD-VM*"}
    acc = table[table["metric"] == "acc_t"].set_index(["shared", "lam"])["value"]
    d = table[table["metric"] == "dacc_t"].set_index(["shared", "lam"])["value"]
    for shared in (False, True):
        assert d[shared, 0.4] == pytest.approx(acc[shared, 0.4] - acc[shared, 1.0])
    # Fig. 12: MTTDL is trained once per seed, so it is the same at every mu
    mttdl = sweep[(sweep["model"] == "MTTDL") & (sweep["metric"] == "acc_t")]
    assert mttdl["value"].nunique() == 1 and set(mttdl["mu"]) == {0.5, 1.0}
    assert {"MTMDD-VM", "MTMDD-VM*"} <= set(sweep["model"])
