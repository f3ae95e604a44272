"""The compared methods of paper C's Table 1, on the same feature vectors as CHTN.

Every method has ``fit(image, text, labels, val=None)`` (training pairs; ``val`` =
``(image, text, labels)`` for the methods that select on a validation split) and
``transform(image=None, text=None) -> (image_repr, text_repr)`` into the common space
(compared by cosine similarity, as paper C's MAP does).

Traditional (no validation split, as in the paper):
  :class:`CCA` (Hotelling, 1936), :class:`KCCA` with a polynomial or Gaussian kernel
  (Hardoon et al., 2004; here by a Nystroem approximation of the kernel feature map, see
  the class), :class:`CFA` (Li et al., 2003), and two methods **in the spirit of** JRL
  (Zhai et al., 2014) and LGCFL (Kang et al., 2015): :class:`JRLSpirit`,
  :class:`LGCFLSpirit` (simplified: label-space regression with l2,1 sparsity, plus a
  cross-modal graph for JRL; not the authors' algorithms).
DNN-based (in :mod:`~clickvision.models.crossmodal_deep`): Corr-AE (Feng et al., 2014),
  Bimodal AE (Ngiam et al., 2011) and Deep-SM (Wei et al., 2017: one classifier per
  modality, probability vectors as the common space), each trained until its validation
  MAP stops improving by the one rule of every paper C network
  (:class:`~clickvision.models.crossmodal_deep.StopRule`). Multimodal DBN and CMDN are left out (see paper
  C's notebook C.03). :func:`make_baseline` builds any of them by its Table 1 name.
"""
from __future__ import annotations

import numpy as np
from scipy.sparse import bmat, csr_matrix
from sklearn.kernel_approximation import Nystroem
from sklearn.metrics.pairwise import euclidean_distances
from sklearn.neighbors import kneighbors_graph

from ..threads import limited

Array = np.ndarray
Val = tuple[Array, Array, Array] | None


def _check_pairs(image: Array, text: Array, labels: Array | None = None) -> None:
    if image.ndim != 2 or text.ndim != 2 or len(image) != len(text):
        raise ValueError(f"image {image.shape} and text {text.shape} must be 2-D with one row per pair")
    for name, a in (("image", image), ("text", text)):
        if not np.isfinite(a).all():
            raise ValueError(f"{name} features contain NaN or inf")
    if labels is not None and len(labels) != len(image):
        raise ValueError(f"labels has {len(labels)} entries for {len(image)} pairs")


def _inv_sqrt(cov: Array) -> Array:
    w, v = np.linalg.eigh(cov)
    return (v / np.sqrt(np.maximum(w, 1e-12))) @ v.T


def _ridge(cov: Array, reg: float) -> Array:
    """``cov + reg * mean variance * I``: a ridge relative to the data's scale."""
    return cov + reg * max(np.trace(cov) / len(cov), 1e-12) * np.eye(len(cov))


class CrossModalMethod:
    """Base: subclasses implement ``_fit`` and ``_image`` / ``_text`` (one view's projection)."""

    name = "method"

    def fit(self, image: Array, text: Array, labels: Array | None = None, val: Val = None) -> "CrossModalMethod":
        """Learn the common space from training pairs (``val``: see the module docstring)."""
        with limited():
            self._fit(np.asarray(image, float), np.asarray(text, float), labels, val)
        return self

    def transform(self, image: Array | None = None, text: Array | None = None) -> tuple[Array | None, Array | None]:
        """``(image_repr, text_repr)`` in the common space (None where no input)."""
        with limited():
            return (None if image is None else self._image(np.asarray(image, float)),
                    None if text is None else self._text(np.asarray(text, float)))


class CCA(CrossModalMethod):
    """Regularised CCA: whiten each view, SVD of the whitened cross-covariance.

    ``reg`` adds ``reg * mean variance`` to each covariance's diagonal (our features have
    more dimensions than training pairs, so plain CCA is singular). The common
    representation is the first ``n_components`` canonical variates.
    """

    name = "CCA"

    def __init__(self, n_components: int = 10, reg: float = 0.1) -> None:
        if n_components < 1 or reg < 0:
            raise ValueError(f"CCA: n_components must be >= 1 and reg >= 0, got {n_components}, {reg}")
        self.n_components, self.reg = n_components, reg

    def _fit(self, image: Array, text: Array, labels: Array | None = None, val: Val = None) -> None:
        x, y = np.asarray(image, float), np.asarray(text, float)
        _check_pairs(x, y)
        self.mean_x_, self.mean_y_ = x.mean(0), y.mean(0)
        xc, yc = x - self.mean_x_, y - self.mean_y_
        n = len(x) - 1
        wx, wy = _inv_sqrt(_ridge(xc.T @ xc / n, self.reg)), _inv_sqrt(_ridge(yc.T @ yc / n, self.reg))
        u, s, vt = np.linalg.svd(wx @ (xc.T @ yc / n) @ wy, full_matrices=False)
        k = min(self.n_components, len(s))
        self.proj_x_, self.proj_y_, self.correlations_ = wx @ u[:, :k], wy @ vt[:k].T, s[:k]

    def _image(self, x: Array) -> Array:
        return (x - self.mean_x_) @ self.proj_x_

    def _text(self, y: Array) -> Array:
        return (y - self.mean_y_) @ self.proj_y_


class KCCA(CrossModalMethod):
    """Kernel CCA with a polynomial or Gaussian kernel, by the Nystroem method.

    Exact KCCA solves an eigenproblem over n x n Gram matrices; we map each view through a
    Nystroem approximation of its kernel (``n_landmarks`` training points drawn with
    ``seed``) and run regularised :class:`CCA` there. ``kernel="poly"``:
    ``(x.y / d + 1)^degree``; ``"rbf"``: ``exp(-||x - y||^2 / median squared distance)``.
    """

    def __init__(self, kernel: str = "rbf", n_components: int = 10, reg: float = 0.1, n_landmarks: int = 500,
                 degree: int = 2, seed: int = 0) -> None:
        if kernel not in ("poly", "rbf"):
            raise ValueError(f"KCCA: kernel must be 'poly' or 'rbf', got {kernel!r}")
        self.kernel, self.degree, self.n_landmarks, self.seed = kernel, degree, n_landmarks, seed
        self.cca = CCA(n_components, reg)
        self.name = f"KCCA ({'Poly' if kernel == 'poly' else 'Gaussian'})"

    def _map(self, x: Array) -> Nystroem:
        m = min(self.n_landmarks, len(x))
        if self.kernel == "poly":
            kw = {"kernel": "poly", "degree": self.degree, "gamma": 1.0 / x.shape[1], "coef0": 1.0}
        else:
            rng = np.random.default_rng(self.seed)
            sub = x[rng.choice(len(x), size=min(len(x), 300), replace=False)]
            d2 = euclidean_distances(sub, squared=True)[np.triu_indices(len(sub), 1)]
            kw = {"kernel": "rbf", "gamma": 1.0 / max(float(np.median(d2)), 1e-12)}
        return Nystroem(n_components=m, random_state=self.seed, **kw).fit(x)

    def _fit(self, image: Array, text: Array, labels: Array | None = None, val: Val = None) -> None:
        x, y = np.asarray(image, float), np.asarray(text, float)
        _check_pairs(x, y)
        self.map_x_, self.map_y_ = self._map(x), self._map(y)
        self.cca.fit(self.map_x_.transform(x), self.map_y_.transform(y))

    def _image(self, x: Array) -> Array:
        return self.cca._image(self.map_x_.transform(x))

    def _text(self, y: Array) -> Array:
        return self.cca._text(self.map_y_.transform(y))


class CFA(CrossModalMethod):
    """Cross-modal factor analysis: orthonormal ``Wx, Wy`` minimising ``||X Wx - Y Wy||_F``.

    With centred, row-normalised views, the solution is the SVD ``X'Y = U S V'``: ``Wx = U``,
    ``Wy = V`` (Li et al., 2003); the first ``n_components`` factors are kept.
    """

    name = "CFA"

    def __init__(self, n_components: int = 10) -> None:
        self.n_components = n_components

    @staticmethod
    def _norm(z: Array) -> Array:
        return z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)

    def _fit(self, image: Array, text: Array, labels: Array | None = None, val: Val = None) -> None:
        x, y = np.asarray(image, float), np.asarray(text, float)
        _check_pairs(x, y)
        x, y = self._norm(x), self._norm(y)
        self.mean_x_, self.mean_y_ = x.mean(0), y.mean(0)
        u, _, vt = np.linalg.svd((x - self.mean_x_).T @ (y - self.mean_y_), full_matrices=False)
        self.wx_, self.wy_ = u[:, :self.n_components], vt[:self.n_components].T

    def _image(self, x: Array) -> Array:
        return (self._norm(x) - self.mean_x_) @ self.wx_

    def _text(self, y: Array) -> Array:
        return (self._norm(y) - self.mean_y_) @ self.wy_


def _one_hot(labels: Array) -> tuple[Array, Array]:
    classes, idx = np.unique(labels, return_inverse=True)
    return classes, np.eye(len(classes))[idx]


class LGCFLSpirit(CrossModalMethod):
    """In the spirit of LGCFL: both views regressed onto the label matrix with l2,1 sparsity.

    ``min ||X U - Y||^2 + ||T V - Y||^2 + lam (||U||_2,1 + ||V||_2,1)`` by iteratively
    reweighted least squares; the common space is the label space (``X U``, ``T V``).
    A simplification (no local-group prior over the projections): not the authors' method.
    """

    name = "LGCFL (spirit)"

    def __init__(self, lam: float = 1.0, n_iter: int = 6) -> None:
        self.lam, self.n_iter = lam, n_iter

    def _solve(self, z: Array, y: Array, extra: Array | None = None) -> Array:
        gram, rhs = z.T @ z + (0 if extra is None else extra), z.T @ y
        d = np.ones(z.shape[1])
        for _ in range(self.n_iter):
            w = np.linalg.solve(gram + self.lam * np.diag(d), rhs)
            d = 1.0 / (2 * np.maximum(np.linalg.norm(w, axis=1), 1e-6))  # l2,1 reweighting
        return w

    def _fit(self, image: Array, text: Array, labels: Array | None = None, val: Val = None) -> None:
        if labels is None:
            raise ValueError(f"{self.name} needs labels")
        _check_pairs(image, text, labels)
        _, y = _one_hot(labels)
        self.u_, self.v_ = self._solve(np.asarray(image, float), y), self._solve(np.asarray(text, float), y)

    def _image(self, x: Array) -> Array:
        return x @ self.u_

    def _text(self, t: Array) -> Array:
        return t @ self.v_


class JRLSpirit(LGCFLSpirit):
    """In the spirit of JRL: :class:`LGCFLSpirit` plus a graph regulariser coupling the views.

    Adds ``mu tr(F' L F)`` with ``F = [X U; T V]`` and ``L`` the Laplacian of a graph over
    all 2n training items: k-nearest neighbours within each view plus an edge between the
    two halves of every pair. JRL also puts unlabelled items in its graph; we keep to
    training items so no test item is seen. A simplification: not the authors' method.
    """

    name = "JRL (spirit)"

    def __init__(self, lam: float = 1.0, mu: float = 1.0, n_neighbors: int = 10, n_iter: int = 6) -> None:
        super().__init__(lam, n_iter)
        self.mu, self.n_neighbors = mu, n_neighbors

    def _fit(self, image: Array, text: Array, labels: Array | None = None, val: Val = None) -> None:
        if labels is None:
            raise ValueError(f"{self.name} needs labels")
        x, t = np.asarray(image, float), np.asarray(text, float)
        _check_pairs(x, t, labels)
        n, dx = len(x), x.shape[1]
        _, y = _one_hot(labels)
        k = min(self.n_neighbors, n - 1)
        gx, gt = (kneighbors_graph(v, k, include_self=False) for v in (x, t))
        eye = csr_matrix(np.eye(n))
        adj = bmat([[gx, eye], [eye, gt]]).tocsr()
        adj = ((adj + adj.T) > 0).astype(float)
        lap = np.diag(np.asarray(adj.sum(1)).ravel()) - adj.toarray()
        z = np.zeros((2 * n, dx + t.shape[1]))
        z[:n, :dx], z[n:, dx:] = x, t
        w = self._solve(z, np.vstack([y, y]), self.mu * (z.T @ lap @ z) / n)
        self.u_, self.v_ = w[:dx], w[dx:]


def make_baseline(name: str, seed: int = 0, **kw) -> CrossModalMethod:
    """A Table 1 method by name (see :data:`BASELINES`); ``kw`` go to its constructor."""
    from .crossmodal_deep import BimodalAE, CorrAE, DeepSM

    makers = {
        "CCA": lambda: CCA(**kw), "CFA": lambda: CFA(**kw),
        "KCCA (Poly)": lambda: KCCA("poly", seed=seed, **kw), "KCCA (Gaussian)": lambda: KCCA("rbf", seed=seed, **kw),
        "Bimodal AE": lambda: BimodalAE(seed=seed, **kw), "Corr-AE": lambda: CorrAE(seed=seed, **kw),
        "JRL (spirit)": lambda: JRLSpirit(**kw), "LGCFL (spirit)": lambda: LGCFLSpirit(**kw),
        "Deep-SM": lambda: DeepSM(seed=seed, **kw),
    }
    if name not in makers:
        raise ValueError(f"unknown baseline {name!r}; choose from {list(makers)}")
    return makers[name]()


BASELINES = ("CCA", "CFA", "KCCA (Poly)", "KCCA (Gaussian)", "Bimodal AE", "Corr-AE", "JRL (spirit)",
             "LGCFL (spirit)", "Deep-SM")
SEEDED = ("KCCA (Poly)", "KCCA (Gaussian)", "Bimodal AE", "Corr-AE", "Deep-SM")
