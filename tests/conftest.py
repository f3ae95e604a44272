"""Fixtures shared by the unit tests."""
import pytest
import torch


@pytest.fixture()
def one_torch_thread():
    """Tiny models: one intra-op thread is faster, and immune to a busy machine's thread thrashing.

    Use per module with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def synthetic_paper_a(n_classes: int = 3, per_class: int = 20, k: int | None = None, c: int = 6, seed: int = 0,
                      noise_every: int = 5):
    """A tiny paper-A data set: clicks name the class (3 words per class), phi drifts with the class.

    Every ``noise_every``-th source image gets the next class's clicks (the SIMULATED kind of
    noise, ``noisy`` column); ``noise_every = 0`` plants none. Splits cycle train, train, val, test.
    """
    import numpy as np
    import pandas as pd
    import scipy.sparse as sp

    from clickvision.click.features import WordClickMatrix, click_tfidf
    from clickvision.experiments.paper_a.data import DomainData, PaperAData

    k = k or 3 * n_classes
    rng = np.random.default_rng(seed)
    n = n_classes * per_class
    y = np.repeat(np.arange(n_classes), per_class)
    noisy = (np.arange(n) % noise_every == 0) if noise_every else np.zeros(n, bool)
    click_y = np.where(noisy, (y + 1) % n_classes, y)
    v = rng.random((n, k)) * 0.1
    for i, cls in enumerate(click_y):
        v[i, (3 * cls) % k:(3 * cls) % k + 3] += 1.0
    v = (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)
    split = np.array(["train", "train", "val", "test"] * (n // 4 + 1))[:n]

    def domain(name: str, clicks: bool) -> DomainData:
        phi = (rng.normal(size=(n, c)) + y[:, None]).astype(np.float32)
        items = pd.DataFrame({"key": [f"{name}{i}" for i in range(n)], "label": y.astype(str), "split": split})
        return DomainData(name, items, y.astype(np.int64), split, phi, None, v if clicks else None,
                          v.sum(1) > 0 if clicks else None, noisy if clicks else None)

    src, tgt = domain("source", True), domain("target", False)
    wc = WordClickMatrix(sp.csr_matrix(v, dtype=np.float64), src.items["key"].to_numpy(object),
                         [f"w{j}" for j in range(k)], np.ones(k), split == "train", {"train_words": k})
    return PaperAData(src, tgt, [str(i) for i in range(n_classes)], wc.vocabulary, wc,
                      click_tfidf(wc, variant="code"))


@pytest.fixture()
def paper_a_synth():
    """:func:`synthetic_paper_a` as a fixture (call it with the sizes a test needs)."""
    return synthetic_paper_a
