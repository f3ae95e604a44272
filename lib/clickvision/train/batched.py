"""K small models (seeds x folds of one configuration) trained as ONE batched model.

The fair-trial protocol trains many copies of one small head on cached feature vectors
(several seeds, K-fold cross-validation, the same validation search for every rival). Trained
one after another, each step of each model pays the Python, autograd and optimizer overhead
of many small operations. Here the K copies are held as one module whose parameters are
stacked along a leading member axis (``torch.func.stack_module_state``) and run with
``torch.func.functional_call`` under ``torch.func.vmap``: one step of a few large operations
trains every member. How much that saves depends on the head's size, the thread count and
how busy the CPU is: ``bench/bench_batched_members.py`` measures it.

* :class:`MemberStack` -- the K copies; member ``k`` of :meth:`MemberStack.from_seeds` is
  initialised exactly as the single model built after ``runtime.seed_everything(seeds[k])``.
  ``stack(x)`` runs every member on the SAME rows (``x``: ``(B, ...)``); ``stack(x,
  per_member=True)`` gives member ``k`` its own rows ``x[k]`` (``x``: ``(K, B, ...)``; folds).
  Dropout draws a different mask for each member (``randomness="different"``).
  :meth:`MemberStack.member` returns member ``k`` as an ordinary ``nn.Module``.
* :class:`MemberBatches` -- per-member seeded minibatch streams (member ``k`` draws from its
  own rows with its own generator: exactly :func:`batch_stream` with its seed).
* :func:`fit_members` -- trains all members jointly with Adam / AdamW / SGD on the stacked
  parameters, each stopped by its own copy of the early-stopping rule
  (:class:`~clickvision.models.crossmodal_deep.StopRule`: evaluated every ``eval_every``
  steps, stopped after ``patience`` evaluations without a gain above ``min_delta`` once
  ``min_steps`` are done, at most ``max_steps``; the best weights are restored).

Why the batched run is K independent runs: each member's gradient is the gradient of its own
loss (``vmap(grad(loss))``; the same as backpropagating the summed loss, the members'
parameters being disjoint slices), and Adam, AdamW and SGD update each element from that
element's gradient and state only, so one optimizer on the stacked tensors performs K
independent optimizers' updates. On the CPU pass ``fused=True`` (Adam, AdamW): the stacked
tensors outgrow the cache, and the fused kernel makes one pass over them instead of several. Without dropout
the members equal K models trained one by one up to floating-point summation order (tests:
``tests/test_train_batched.py``); with dropout the masks come from one generator, so a
member is the same model in distribution, not bit for bit.

Modules with buffers work: buffers are stacked like parameters (a batch norm's running
statistics are updated per member in training mode) and are part of the best-state snapshot.
"""
from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.func import functional_call, grad_and_value, stack_module_state, vmap

from .. import runtime
from .config import NonFiniteLossError

if TYPE_CHECKING:  # the rule lives with paper C's networks; imported lazily (no import cycle)
    from ..models.crossmodal_deep import StopRule

__all__ = ["MemberBatches", "MemberStack", "batch_stream", "fit_members"]

_OPTIMIZERS = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}


class MemberStack(nn.Module):
    """``K`` independent copies of one architecture held as one module (parameters and buffers
    stacked on a leading member axis). ``ids`` name the members (positions in the stack they
    were taken from; ``0..K-1`` for a new stack), so a sub-stack still knows whose rows to use.
    """

    def __init__(self, modules: Sequence[nn.Module], ids: Sequence[int] | None = None) -> None:
        super().__init__()
        modules = list(modules)
        if not modules or not all(isinstance(m, nn.Module) for m in modules):
            raise ValueError("MemberStack: modules must be a non-empty sequence of nn.Module")
        ref = {n: (tuple(t.shape), t.dtype) for n, t in _named_tensors(modules[0])}
        if not any(True for _ in modules[0].parameters()):
            raise ValueError("MemberStack: the modules have no parameters")
        for k, m in enumerate(modules[1:], start=1):
            got = {n: (tuple(t.shape), t.dtype) for n, t in _named_tensors(m)}
            if got != ref:
                bad = sorted(set(ref) ^ set(got) or {n for n in ref if ref[n] != got[n]})
                raise ValueError(f"MemberStack: module {k} differs from module 0 in {bad[:5]} "
                                 "(every member must be the same architecture)")
        params, buffers = stack_module_state(modules)
        base = copy.deepcopy(modules[0]).to("meta")
        self._init_from(base, params, buffers, range(len(modules)) if ids is None else ids)
        self.train(modules[0].training)

    def _init_from(self, base: nn.Module, params: dict, buffers: dict, ids: Sequence[int]) -> None:
        self.__dict__["_base"] = base  # kept out of the module tree: its tensors are on 'meta'
        self._param_names, self._buffer_names = list(params), list(buffers)
        self.stacked = nn.ParameterList([nn.Parameter(p.detach().clone()) for p in params.values()])
        for j, b in enumerate(buffers.values()):
            self.register_buffer(f"stacked_buffer{j}", b.detach().clone())
        self.ids = tuple(int(i) for i in ids)
        if len(self.ids) != self.k:
            raise ValueError(f"MemberStack: {len(self.ids)} ids for {self.k} members")

    @classmethod
    def from_seeds(cls, build: Callable[[], nn.Module], seeds: Sequence[int]) -> MemberStack:
        """Member ``k`` = ``build()`` after ``runtime.seed_everything(seeds[k])``: the model that
        seed would have trained (leaves the global random state at the last seed's)."""
        if len(seeds) == 0:
            raise ValueError("MemberStack.from_seeds: seeds is empty")
        modules = []
        for s in seeds:
            runtime.seed_everything(s)
            modules.append(build())
        return cls(modules)

    @property
    def k(self) -> int:
        """Number of members."""
        return int(self.stacked[0].shape[0])

    def __len__(self) -> int:
        return self.k

    def train(self, mode: bool = True) -> MemberStack:  # the meta template follows the mode
        self.__dict__["_base"].train(mode)
        return super().train(mode)

    def stacked_state(self) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """``(parameters, buffers)`` by the single module's names, each ``(K, ...)`` (live tensors)."""
        params = dict(zip(self._param_names, self.stacked))
        buffers = {n: getattr(self, f"stacked_buffer{j}") for j, n in enumerate(self._buffer_names)}
        return params, buffers

    def _call(self, params: dict, buffers: dict, *inputs: Any) -> Any:
        return functional_call(self.__dict__["_base"], (params, buffers), inputs)

    def forward(self, *inputs: torch.Tensor, per_member: bool = False) -> Any:
        """Every member's output, stacked ``(K, B, ...)``. ``per_member=False``: all members see
        the same ``inputs`` (``(B, ...)``); ``True``: member ``k`` sees ``inputs[i][k]``
        (each input ``(K, B, ...)``)."""
        if per_member:
            for i, x in enumerate(inputs):
                if not isinstance(x, torch.Tensor) or x.dim() < 1 or x.shape[0] != self.k:
                    shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
                    raise ValueError(f"MemberStack.forward(per_member=True): input {i} must have the "
                                     f"{self.k} members on its first axis, got shape {shape}")
        params, buffers = self.stacked_state()
        dims = (0, 0) + ((0 if per_member else None),) * len(inputs)
        return vmap(self._call, in_dims=dims, randomness="different")(params, buffers, *inputs)

    def loss_and_grads(self, loss_fn: Callable[[Callable, Any], torch.Tensor],
                       batch: Any) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Every member's loss and gradient, ``vmap(grad(...))``: ``loss_fn(model, batch_k)`` is
        the SINGLE model's scalar loss (``model(x)`` runs that member), ``batch`` a tensor or
        tuple of tensors with the members on the first axis. Returns ``(losses (K,), {name:
        grad (K, ...)})``. Faster on the CPU than autograd through ``forward`` (no zero-filled
        and re-laid-out stacked gradient buffers)."""
        params, buffers = self.stacked_state()

        def one(p: dict, b: dict, batch_k: Any) -> torch.Tensor:
            loss = loss_fn(lambda *inputs: self._call(p, b, *inputs), batch_k)
            if not torch.is_tensor(loss) or loss.dim() != 0:
                shape = tuple(loss.shape) if torch.is_tensor(loss) else type(loss).__name__
                raise ValueError(f"fit_members: loss_fn must return one scalar loss per member, got {shape}")
            return loss

        grads, losses = vmap(grad_and_value(one), in_dims=(0, 0, 0), randomness="different")(
            {n: p.detach() for n, p in params.items()}, buffers, batch)
        return losses, grads

    def _position(self, k: int) -> int:
        if not isinstance(k, (int, np.integer)) or not -self.k <= k < self.k:
            raise IndexError(f"MemberStack: member {k!r} out of range for {self.k} members")
        return int(k) % self.k

    def call_member(self, k: int, *inputs: torch.Tensor) -> Any:
        """Member ``k`` alone on ``inputs`` (no vmap: members' inputs may differ in size)."""
        k = self._position(k)
        params, buffers = self.stacked_state()
        return self._call({n: p[k] for n, p in params.items()}, {n: b[k] for n, b in buffers.items()}, *inputs)

    def member_state(self, k: int) -> dict[str, torch.Tensor]:
        """A detached copy of member ``k``'s parameters and buffers (single module's names)."""
        k = self._position(k)
        params, buffers = self.stacked_state()
        return {n: t[k].detach().clone() for n, t in {**params, **buffers}.items()}

    @torch.no_grad()
    def load_member_state(self, k: int, state: dict[str, torch.Tensor]) -> None:
        """Overwrite member ``k`` with ``state`` (as from :meth:`member_state`)."""
        k = self._position(k)
        params, buffers = self.stacked_state()
        every = {**params, **buffers}
        if set(state) != set(every):
            raise KeyError(f"MemberStack.load_member_state: names differ: {sorted(set(state) ^ set(every))[:5]}")
        for n, t in every.items():
            t[k].copy_(state[n])

    def member(self, k: int) -> nn.Module:
        """Member ``k`` as an ordinary module (an independent copy, in eval mode, for scoring)."""
        state = self.member_state(k)
        device = self.stacked[0].device
        m = copy.deepcopy(self.__dict__["_base"]).to_empty(device=device)
        with torch.no_grad():
            for n, t in [*m.named_parameters(), *m.named_buffers()]:
                t.copy_(state[n])
        return m.eval()

    def subset(self, positions: Sequence[int]) -> MemberStack:
        """A new stack of copies of the members at ``positions`` (their ``ids`` kept)."""
        pos = [self._position(p) for p in positions]
        if not pos:
            raise ValueError("MemberStack.subset: positions is empty")
        index = torch.as_tensor(pos, device=self.stacked[0].device)
        params, buffers = self.stacked_state()
        new = MemberStack.__new__(MemberStack)
        nn.Module.__init__(new)
        new._init_from(copy.deepcopy(self.__dict__["_base"]), {n: p.detach()[index] for n, p in params.items()},
                       {n: b[index] for n, b in buffers.items()}, [self.ids[p] for p in pos])
        return new.train(self.training)


def _named_tensors(m: nn.Module) -> Iterator[tuple[str, torch.Tensor]]:
    yield from m.named_parameters()
    yield from m.named_buffers()


def batch_stream(*tensors: torch.Tensor, batch_size: int, seed: int) -> Iterator[tuple[torch.Tensor, ...]]:
    """Endless seeded minibatches of row-aligned ``tensors``: each epoch a fresh permutation
    from a generator seeded with ``seed``, ``n // batch_size`` full batches (the rest dropped).
    The single-model stream that :class:`MemberBatches` gives each member."""
    n = len(tensors[0]) if tensors else 0
    if not tensors or any(len(t) != n for t in tensors):
        raise ValueError(f"batch_stream: tensors must be non-empty and row-aligned, got lengths "
                         f"{[len(t) for t in tensors]}")
    if not isinstance(batch_size, (int, np.integer)) or not 1 <= batch_size <= n:
        raise ValueError(f"batch_stream: batch_size must be an integer in [1, {n} rows], got {batch_size!r}")
    return _batches(tensors, int(batch_size), torch.Generator().manual_seed(int(seed)))


def _batches(tensors: tuple[torch.Tensor, ...], batch_size: int, g: torch.Generator) -> Iterator[tuple]:
    n = len(tensors[0])
    while True:
        perm = torch.randperm(n, generator=g)
        for i in range(n // batch_size):
            idx = perm[i * batch_size:(i + 1) * batch_size]
            yield tuple(t[idx] for t in tensors)


class MemberBatches:
    """Per-member minibatches stacked ``(members, B, ...)``: member ``k`` draws from its own
    row-aligned ``data[k]`` (a tuple of tensors, e.g. ``(X_k, y_k)``; members may share the
    same tensors) by :func:`batch_stream` with ``seeds[k]``. A member's stream advances only
    when it is asked for, so a member's batches do not depend on the others (or on when they
    stop). ``batches(ids)`` is the call :func:`fit_members` makes."""

    def __init__(self, data: Sequence[Sequence[torch.Tensor]], batch_size: int, seeds: Sequence[int]) -> None:
        if len(data) == 0:
            raise ValueError("MemberBatches: data is empty")
        if len(seeds) != len(data):
            raise ValueError(f"MemberBatches: {len(seeds)} seeds for {len(data)} members' data")
        widths = {len(d) for d in data}
        if len(widths) != 1:
            raise ValueError(f"MemberBatches: every member needs the same number of tensors, got {sorted(widths)}")
        self._streams = [batch_stream(*d, batch_size=batch_size, seed=s) for d, s in zip(data, seeds)]
        for k, d in enumerate(data):  # shapes after the row axis must agree (they are stacked)
            if [t.shape[1:] for t in d] != [t.shape[1:] for t in data[0]]:
                raise ValueError(f"MemberBatches: member {k}'s tensors differ in shape from member 0's")

    def __len__(self) -> int:
        return len(self._streams)

    def __call__(self, ids: Sequence[int]) -> tuple[torch.Tensor, ...]:
        rows = [next(self._streams[i]) for i in ids]
        return tuple(torch.stack(parts) for parts in zip(*rows))


def _optimizer(params: list[nn.Parameter], optimizer: str, lr: float, **kw: Any) -> torch.optim.Optimizer:
    if optimizer not in _OPTIMIZERS:
        raise ValueError(f"fit_members: optimizer must be one of {sorted(_OPTIMIZERS)}, got {optimizer!r}")
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"fit_members: lr must be a finite number > 0, got {lr!r}")
    return _OPTIMIZERS[optimizer](params, lr=lr, **kw)


def _compact(work: MemberStack, opt: torch.optim.Optimizer, keep: list[int]) -> tuple[MemberStack, Any]:
    """Drop the stopped members: a sub-stack of ``keep`` with its optimizer state sliced alike."""
    new = work.subset(keep)
    new_opt = type(opt)(list(new.parameters()), **opt.defaults)
    index = torch.as_tensor(keep)
    for old, p in zip(work.parameters(), new.parameters()):
        new_opt.state[p] = {name: (v[index].clone() if torch.is_tensor(v) and v.shape == old.shape else
                                   v.clone() if torch.is_tensor(v) else v) for name, v in opt.state[old].items()}
    return new, new_opt


def fit_members(stack: MemberStack, loss_fn: Callable[[Callable, Any], torch.Tensor],
                batches: Callable[[Sequence[int]], Any],
                val_fn: Callable[[MemberStack], Sequence[float]] | None = None,
                rule: StopRule | None = None, *, optimizer: str = "adam", lr: float = 1e-3,
                mode: str = "max", monitor: str = "val", **optimizer_kw: Any) -> tuple[pd.DataFrame, list[dict]]:
    """Train every member of ``stack`` by ``rule``, each with its own early stop; ``stack`` ends
    holding each member's restored best weights (the last weights without ``val_fn``).

    ``loss_fn(model, batch)`` -> the scalar loss of ONE model on its batch (the single-model
    loss; ``model(x)`` runs the member; vmapped over members by
    :meth:`MemberStack.loss_and_grads`); ``batches(ids)`` -> that step's batch for members
    ``ids``, members on the first axis (:class:`MemberBatches`); ``val_fn(work)`` -> one
    validation value per member of the working stack ``work`` (members ``work.ids``; it
    shrinks as members stop; ``mode`` 'max' or 'min'; called in eval mode, without gradients,
    outside the training random stream, e.g. with ``work(x, per_member=True)``). ``rule`` (default ``StopRule()``):
    ``max_steps, eval_every, patience, min_delta, min_steps`` with the meaning of
    :class:`~clickvision.models.crossmodal_deep.StopRule` and the one
    :class:`~clickvision.train.Trainer`, per member. ``optimizer``: 'adam', 'adamw' or 'sgd'
    (``lr``, ``optimizer_kw`` such as ``weight_decay`` or ``momentum``), one optimizer over the
    stacked tensors = one per member (elementwise updates).

    A stopped member is frozen by leaving the working stack: its best weights are written back
    into ``stack`` at once and its parameters and optimizer state are dropped from training.
    (Zeroing its gradient would not freeze it: Adam's momentum and weight decay still move a
    parameter whose gradient is zero; masking the update would, but would keep computing it.)

    Returns ``(history, stops)``: history rows ``step, member, metric, value`` (metric
    ``'loss'`` every step, ``monitor`` at every evaluation; ``member`` = stack position) and
    one stop record per member: ``member, stop_step, best_step, best_val, capped`` (``capped``:
    reached ``max_steps`` without its patience running out), as ``fit_to_convergence`` gives.
    """
    if rule is None:
        from ..models.crossmodal_deep import StopRule
        rule = StopRule()
    if not isinstance(stack, MemberStack):
        raise TypeError(f"fit_members: stack must be a MemberStack, got {type(stack).__name__}")
    if mode not in ("min", "max"):
        raise ValueError(f"fit_members: mode must be 'min' or 'max', got {mode!r}")
    sign = 1.0 if mode == "max" else -1.0
    was_training = stack.training
    work = stack.subset(range(stack.k)).train()
    opt = _optimizer(list(work.parameters()), optimizer, lr, **optimizer_kw)
    position = {m: p for p, m in enumerate(stack.ids)}
    best: dict[int, dict] = {}
    bad = dict.fromkeys(stack.ids, 0)
    stops: dict[int, dict] = {}
    loss_rows: list[tuple[int, tuple[int, ...], torch.Tensor]] = []
    val_rows: list[tuple[int, int, float]] = []
    step = 0

    def evaluate() -> list[int]:
        """Validate ``work``; update best / patience; the ids whose patience ran out."""
        rng = torch.get_rng_state()
        try:
            with torch.no_grad():
                work.eval()
                values = val_fn(work)
        finally:
            work.train()
            torch.set_rng_state(rng)
        values = np.asarray(values.detach().cpu() if torch.is_tensor(values) else values, dtype=float).reshape(-1)
        if values.shape != (work.k,):
            raise ValueError(f"fit_members: val_fn returned {values.size} values for {work.k} members {work.ids}")
        out = []
        for pos, (m, v) in enumerate(zip(work.ids, values)):
            val_rows.append((step, m, float(v)))
            b = best.get(m)
            if math.isfinite(v) and (b is None or sign * (v - b["value"]) > rule.min_delta):
                best[m], bad[m] = {"value": float(v), "step": step, "state": work.member_state(pos)}, 0
            else:
                bad[m] += 1
                if bad[m] >= rule.patience and step >= rule.min_steps:
                    out.append(m)
        return out

    def finish(m: int, pos: int, capped: bool) -> None:
        b = best.get(m)
        stack.load_member_state(position[m], b["state"] if b is not None else work.member_state(pos))
        stops[m] = {"member": position[m], "stop_step": step, "best_step": b["step"] if b else step,
                    "best_val": b["value"] if b else math.nan, "capped": capped}

    while step < rule.max_steps:
        step += 1
        losses, grads = work.loss_and_grads(loss_fn, batches(work.ids))
        finite = torch.isfinite(losses)
        if not bool(finite.all()):
            bad_ids = [m for m, f in zip(work.ids, finite.tolist()) if not f]
            raise NonFiniteLossError(f"fit_members: loss of member(s) {bad_ids} is not finite at step {step}: "
                                     f"{losses[~finite].tolist()}")
        for p, g in zip(work.stacked, grads.values()):  # member k's slice holds exactly loss k's gradient
            p.grad = g
        opt.step()
        loss_rows.append((step, work.ids, losses))
        if val_fn is None or (step % rule.eval_every and step < rule.max_steps):
            continue
        done = evaluate()
        if done:
            keep = [p for p, m in enumerate(work.ids) if m not in done]
            for p, m in enumerate(work.ids):
                if m in done:
                    finish(m, p, capped=False)
            if not keep:
                break
            work, opt = _compact(work, opt, keep)
    for p, m in enumerate(work.ids):
        if m not in stops:
            finish(m, p, capped=True)
    stack.train(was_training)
    rows = [(s, m, "loss", float(v)) for s, ids, ls in loss_rows for m, v in zip(ids, ls.tolist())]
    rows += [(s, m, monitor, v) for s, m, v in val_rows]
    history = pd.DataFrame(rows, columns=["step", "member", "metric", "value"])
    history["member"] = history["member"].map(position)
    return history, [stops[m] for m in stack.ids]
