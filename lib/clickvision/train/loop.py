"""The :class:`Trainer` loop, its data helpers (:class:`cycle_zip`), checkpoints, :func:`predict`."""
from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from .. import runtime
from ..io import atomic_path
from .config import CHECKPOINT_FORMAT, HISTORY_COLUMNS, NonFiniteLossError, TrainConfig, lr_factor



class cycle_zip:  # noqa: N801 - used like the builtin zip
    """Zip loaders, restarting the shorter ones, until the longest has made one pass.

    ``cycle_zip(a, b)`` yields tuples, ``cycle_zip(source=a, target=b)`` dicts (paper A: one
    source and one target batch per step). Re-iterable: each pass restarts every loader.
    """

    def __init__(self, *loaders: Iterable, **named: Iterable) -> None:
        if bool(loaders) == bool(named):
            raise ValueError("cycle_zip takes loaders either positionally or by name, not both")
        self._keys, self._loaders = list(named) or None, list(named.values()) or list(loaders)

    def __len__(self) -> int:
        return max(len(loader) for loader in self._loaders)  # type: ignore[arg-type]

    def __iter__(self) -> Iterator:
        sized = all(hasattr(loader, "__len__") for loader in self._loaders)
        its, done = [iter(loader) for loader in self._loaders], [False] * len(self._loaders)
        for _ in range(len(self)) if sized else itertools.count():
            items = []
            for i, loader in enumerate(self._loaders):
                item = next(its[i], done)  # `done` doubles as the end-of-pass sentinel
                if item is done:
                    done[i] = True
                    if all(done):
                        return
                    its[i] = iter(loader)
                    if (item := next(its[i], done)) is done:
                        who = self._keys[i] if self._keys else i
                        raise ValueError(f"cycle_zip: loader {who!r} yields no batches")
                items.append(item)
            yield dict(zip(self._keys, items)) if self._keys else tuple(items)




def _get_rng() -> dict:
    _, key, pos, has_gauss, gauss = np.random.get_state()
    return {"torch": torch.get_rng_state(), "python": random.getstate(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "numpy": [key.tolist(), int(pos), int(has_gauss), float(gauss)]}


def _set_rng(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    if state["cuda"] and torch.cuda.is_available():  # pragma: no cover - no GPU in CI
        torch.cuda.set_rng_state_all(state["cuda"])
    key, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state(("MT19937", np.asarray(key, dtype=np.uint32), pos, has_gauss, gauss))


def _to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, Mapping):
        return {k: _to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to_device(v, device) for v in batch)
    return batch


def _batch_size(batch: Any) -> int:
    """Rows of the first tensor found in the batch (1 if none)."""
    if isinstance(batch, torch.Tensor):
        return int(batch.shape[0]) if batch.dim() else 1
    for v in batch.values() if isinstance(batch, Mapping) else batch:
        if isinstance(v, (torch.Tensor, Mapping, list, tuple)):
            return _batch_size(v)
    return 1


def _split_loss(out: Any) -> tuple[torch.Tensor, Mapping[str, Any]]:
    loss, terms = out if isinstance(out, tuple) and len(out) == 2 else (out, {})
    if not isinstance(loss, torch.Tensor) or not isinstance(terms, Mapping) or loss.numel() != 1:
        raise TypeError("loss_fn must return a scalar Tensor or (scalar Tensor, dict of logged "
                        f"terms), got {type(out).__name__} {getattr(out, 'shape', '')}")
    return loss, terms


def _scalar(name: str, v: Any) -> float:
    if isinstance(v, torch.Tensor) and v.numel() != 1:
        raise ValueError(f"logged term {name!r} has shape {tuple(v.shape)}, expected a scalar")
    return float(v.detach()) if isinstance(v, torch.Tensor) else float(v)


def _epoch_source(data: Any) -> tuple[Callable[[], Iterator], int | None]:
    """(a factory of one epoch's iterator, batches per epoch or None)."""
    if isinstance(data, Mapping):
        data = cycle_zip(**data)
    if isinstance(data, Iterator):
        raise TypeError("data is a one-shot iterator; pass a re-iterable (DataLoader, list) or "
                        "a callable returning a fresh iterator per epoch")
    if callable(data) and not hasattr(data, "__iter__"):
        return (lambda: iter(data())), None
    if not hasattr(data, "__iter__"):
        raise TypeError(f"data must be iterable or callable, got {type(data).__name__}")
    try:
        return (lambda: iter(data)), len(data)
    except TypeError:  # no len(), or a cycle_zip of loaders without one
        return (lambda: iter(data)), None


class Trainer:
    """Minimise ``loss_fn(model, batch)`` over ``train_data`` (see the module docstring).

    Data: a re-iterable of batches (DataLoader, list), a callable returning one epoch's
    iterator, or a dict of loaders (zipped with :class:`cycle_zip`: one batch of each per step).
    ``metrics``: name -> ``fn(model, batch)`` giving per-example values, averaged over the
    validation set. ``params``: parameters or torch param-group dicts (default: all trainable).
    The first fit seeds with ``config.seed`` (seed before building the model yourself); a later
    fit continues until ``epochs``/``max_steps`` are reached.
    """

    def __init__(self, model: nn.Module, loss_fn: Callable[[nn.Module, Any], Any],
                 config: TrainConfig, metrics: Mapping[str, Callable] | None = None,
                 callbacks: Iterable = (), params: Iterable | None = None) -> None:
        if not isinstance(config, TrainConfig):
            raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
        self.config, self.loss_fn = config, loss_fn
        self.device = runtime.get_device(None if config.device == "auto" else config.device)
        self.model = model.to(self.device)
        self.metrics, self.callbacks = dict(metrics or {}), list(callbacks)
        groups = list(model.parameters() if params is None else params)
        groups = [p for p in groups if not isinstance(p, torch.Tensor) or p.requires_grad]
        if not groups:
            raise ValueError("Trainer: no trainable parameters")
        opt = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}
        kw = {"momentum": config.momentum} if config.optimizer == "sgd" else {}
        self.optimizer = opt[config.optimizer](groups, lr=config.lr,
                                               weight_decay=config.weight_decay, **kw)
        for group in self.optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
        self.params = [p for g in self.optimizer.param_groups for p in g["params"]]
        self.amp = runtime.use_amp(self.device, config.amp)  # fp16 (no bf16) needs loss scaling
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp
                                           and not torch.cuda.is_bf16_supported())
        self.step = self.epoch = self._batches_in_epoch = self._bad_evals = 0
        self.should_stop = self._seeded = False  # a callback may set should_stop
        self._rows: list[tuple] = []
        self._best: dict | None = None
        self._last_eval_step = self._last_checkpoint_step = self._sched_total = None
        self._rng_epoch_start: dict | None = None
        self._resume_rng: tuple[dict, dict] | None = None

    def fit(self, train_data: Any, val_data: Any = None,
            val_fn: Callable[[nn.Module], Mapping[str, float]] | None = None) -> pd.DataFrame:
        """Train; evaluate on ``val_data`` (loss, terms, metrics) and/or ``val_fn(model)``
        every ``eval_every`` and when training ends. Returns the History."""
        cfg = self.config
        source, n_batches = _epoch_source(train_data)
        per_epoch = math.ceil(n_batches / cfg.accumulate) if n_batches else None
        by_epochs = cfg.epochs * per_epoch if cfg.epochs and per_epoch else None
        caps = [v for v in (cfg.max_steps, by_epochs) if v]
        total = min(caps) if caps and (by_epochs or not cfg.epochs) else None
        self._sched_total = total if cfg.schedule_unit == "step" else cfg.epochs
        lr_factor(cfg, 0, self._sched_total)  # fails now if a cosine schedule lacks a length
        validating = val_data is not None or val_fn is not None
        if cfg.monitor is not None and not validating:
            raise ValueError(f"TrainConfig.monitor={cfg.monitor!r} needs val_data or val_fn")
        if not self._seeded:
            runtime.seed_everything(cfg.seed)
            self._seeded = True
        bar = runtime.progress(total=total, initial=self.step, desc="train",
                               **({} if cfg.progress is None else {"disable": not cfg.progress}))
        self.should_stop = False
        try:
            while not self._finished():
                batches, exhausted = self._start_epoch(source), False
                while not self._finished():
                    if not (micro := list(itertools.islice(batches, cfg.accumulate))):
                        exhausted = True
                        break
                    self._batches_in_epoch += len(micro)
                    logs = self._train_step(micro)
                    bar.update(1)
                    bar.set_postfix(loss=f"{logs['loss']:.4g}", refresh=False)
                    if validating and cfg.eval_every != "epoch" and self.step % cfg.eval_every == 0:
                        self._evaluate(val_data, val_fn)
                    if cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0:
                        self.save_checkpoint()
                if not exhausted:
                    break
                if self._batches_in_epoch == 0:
                    raise ValueError(f"train_data yielded no batches in epoch {self.epoch + 1}")
                self.epoch, self._batches_in_epoch = self.epoch + 1, 0
                if validating and cfg.eval_every == "epoch":
                    self._evaluate(val_data, val_fn)
            if validating and self._last_eval_step != self.step:
                self._evaluate(val_data, val_fn)
        finally:
            bar.close()
        if cfg.checkpoint_path is not None:  # the trajectory's end, before restoring the best
            self.save_checkpoint()
        if cfg.restore_best and self._best is not None:
            self.model.load_state_dict(self._best["state"])
        history = self.history
        self._call("on_fit_end", history)
        return history

    def _finished(self) -> bool:
        cfg = self.config
        return self.should_stop or bool(cfg.max_steps and self.step >= cfg.max_steps) \
            or bool(cfg.epochs and self.epoch >= cfg.epochs)

    def _start_epoch(self, source: Callable[[], Iterator]) -> Iterator:
        if self._resume_rng is None:
            self._rng_epoch_start = _get_rng()
            return source()
        (self._rng_epoch_start, now), self._resume_rng = self._resume_rng, None
        _set_rng(self._rng_epoch_start)  # replay the interrupted epoch's order, skip what ran
        batches = source()
        for _ in range(self._batches_in_epoch):
            if next(batches, None) is None:
                raise ValueError("train_data is shorter than when the checkpoint was written")
        _set_rng(now)
        return batches

    def _call(self, hook: str, *args: Any) -> None:
        for cb in self.callbacks:
            if (fn := getattr(cb, hook, None)) is not None:
                fn(self, *args)

    def _train_step(self, micro: list) -> dict[str, float]:
        step, epoch = self.step + 1, self.epoch + 1
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        sums: dict[str, float] = {}
        for batch in micro:
            with runtime.autocast(self.device, self.amp):
                loss, terms = _split_loss(self.loss_fn(self.model, _to_device(batch, self.device)))
            values = {"loss": _scalar("loss", loss), **{k: _scalar(k, v) for k, v in terms.items()}}
            if bad := [f"{k}={v}" for k, v in values.items() if not math.isfinite(v)]:
                kept = "no checkpoint was written" if self._last_checkpoint_step is None else \
                    f"the last checkpoint (step {self._last_checkpoint_step}) is intact"
                raise NonFiniteLossError(f"non-finite loss term {', '.join(bad)} at step {step} "
                                         f"(epoch {epoch}); weights not updated, {kept}")
            self._call("on_before_backward", step, loss, terms)
            self.scaler.scale(loss.float()).backward()
            sums = {k: sums.get(k, 0.0) + v for k, v in values.items()}
        if self.scaler.is_enabled():  # pragma: no cover - fp16 on CUDA only
            self.scaler.unscale_(self.optimizer)
        for p in self.params if len(micro) > 1 else ():  # gradient of the mean over batches
            if p.grad is not None:
                p.grad.div_(len(micro))
        self._call("on_after_backward", step)
        if self.config.grad_clip is not None:
            nn.utils.clip_grad_norm_(self.params, self.config.grad_clip)
        t = self.step if self.config.schedule_unit == "step" else self.epoch
        for group in self.optimizer.param_groups:
            group["lr"] = group["initial_lr"] * lr_factor(self.config, t, self._sched_total)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.step = step
        logs = {**{k: v / len(micro) for k, v in sums.items()},
                "lr": float(self.optimizer.param_groups[0]["lr"])}
        if step % self.config.log_every == 0:
            self._rows += [(step, epoch, "train", k, v) for k, v in logs.items()]
        self._call("on_step_end", step, logs)
        return logs

    def evaluate(self, val_data: Any = None,
                 val_fn: Callable[[nn.Module], Mapping[str, float]] | None = None,
                 ) -> dict[str, float]:
        """Batch-size-weighted mean loss and terms over ``val_data``, the mean of each metric's
        per-example values, and ``val_fn(model)``'s dict. Leaves the random streams as found."""
        was_training, rng, out = self.model.training, _get_rng(), {}
        self.model.eval()
        try:
            with torch.no_grad():
                sums, seen, per_example = {}, 0, {k: [] for k in self.metrics}
                for batch in _epoch_source(val_data)[0]() if val_data is not None else ():
                    batch, n = _to_device(batch, self.device), _batch_size(batch)
                    with runtime.autocast(self.device, self.amp):
                        loss, terms = _split_loss(self.loss_fn(self.model, batch))
                        for name, fn in self.metrics.items():
                            values = torch.as_tensor(fn(self.model, batch)).detach()
                            per_example[name].append(values.double().reshape(-1).cpu())
                    seen += n
                    sums = {k: sums.get(k, 0.0) + n * _scalar(k, v)
                            for k, v in {"loss": loss, **terms}.items()}
                if val_data is not None and not seen:
                    raise ValueError("val_data yielded no batches")
                out.update({k: v / seen for k, v in sums.items()})
                out.update({k: float(torch.cat(v).mean()) for k, v in per_example.items() if v})
                extra = val_fn(self.model) if val_fn is not None else {}
                out.update({str(k): float(v) for k, v in extra.items()})
        finally:
            _set_rng(rng)
            self.model.train(was_training)
        return out

    def _evaluate(self, val_data: Any, val_fn: Callable | None) -> None:
        cfg, metrics = self.config, self.evaluate(val_data, val_fn)
        self._last_eval_step = self.step
        epoch = self.epoch + (1 if self._batches_in_epoch else 0)
        self._rows += [(self.step, epoch, "val", k, v) for k, v in metrics.items()]
        if cfg.monitor is not None:
            if cfg.monitor not in metrics:
                raise KeyError(f"TrainConfig.monitor={cfg.monitor!r} is not a validation metric; "
                               f"they are {sorted(metrics)}")
            value, best = metrics[cfg.monitor], self._best
            if math.isfinite(value) and (best is None or (
                    value < best["value"] - cfg.min_delta if cfg.mode == "min"
                    else value > best["value"] + cfg.min_delta)):
                state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
                self._best, self._bad_evals = {"value": value, "step": self.step, "state": state}, 0
            else:
                self._bad_evals += 1
                self.should_stop |= cfg.patience is not None and self._bad_evals >= cfg.patience
        self._call("on_eval_end", self.step, metrics)

    @property
    def history(self) -> pd.DataFrame:
        """Tidy rows ``step, epoch, split, name, value``; ``attrs``: best_step, best_value."""
        df = pd.DataFrame(self._rows, columns=list(HISTORY_COLUMNS))
        df = df.astype({"step": "int64", "epoch": "int64", "value": "float64"})
        if self._best is not None:
            df.attrs.update(best_step=self._best["step"], best_value=self._best["value"])
        return df

    def save_checkpoint(self, path: str | Path | None = None) -> Path:
        """Write model, optimizer, scaler, counters, random states and History atomically
        (default path: ``config.checkpoint_path``); a failed save leaves the old file intact."""
        path, now = Path(path if path is not None else self.config.checkpoint_path), _get_rng()
        config = {k: str(v) if isinstance(v, Path) else v for k, v in asdict(self.config).items()}
        state = {"format": CHECKPOINT_FORMAT, "model": self.model.state_dict(),
                 "optimizer": self.optimizer.state_dict(), "scaler": self.scaler.state_dict(),
                 "step": self.step, "epoch": self.epoch, "batches_in_epoch": self._batches_in_epoch,
                 "rng_now": now, "rng_epoch_start": self._rng_epoch_start
                 if self._batches_in_epoch else now, "history": self._rows, "best": self._best,
                 "bad_evals": self._bad_evals, "last_eval_step": self._last_eval_step,
                 "config": config}
        with atomic_path(path) as tmp:
            torch.save(state, tmp)
        self._last_checkpoint_step = self.step
        return path

    def resume(self, path: str | Path) -> Trainer:
        """Load a checkpoint of :meth:`save_checkpoint`; the next ``fit`` continues from it."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"checkpoint {path} does not exist")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:
            raise ValueError(f"checkpoint {path} cannot be read: {err}") from err
        if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"{path} is not a clickvision checkpoint (format {CHECKPOINT_FORMAT})")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if state["scaler"]:  # pragma: no cover - fp16 on CUDA only
            self.scaler.load_state_dict(state["scaler"])
        self.step, self.epoch, self._batches_in_epoch = (
            state["step"], state["epoch"], state["batches_in_epoch"])
        self._rows, self._best = [tuple(r) for r in state["history"]], state["best"]
        self._bad_evals, self._last_eval_step = state["bad_evals"], state["last_eval_step"]
        self._last_checkpoint_step, self._seeded = self.step, True
        self._resume_rng = (state["rng_epoch_start"], state["rng_now"])
        return self


def predict(model: nn.Module, data: Iterable, device: torch.device | str | None = None,
            forward: Callable[[nn.Module, Any], Any] | None = None) -> Any:
    """Run ``model`` over ``data`` in eval and inference mode; outputs concatenated on the CPU.

    ``forward(model, batch)`` defaults to ``model(batch)`` for a tensor batch and
    ``model(batch[0])`` for an ``(inputs, targets...)`` tuple or list. ``device`` moves the
    model there (in place). Outputs may be tensors, or tuples or dicts of tensors.
    """
    device = torch.device(device) if device is not None else next(
        itertools.chain((p.device for p in model.parameters()), [torch.device("cpu")]))
    model.to(device)
    forward = forward or (lambda m, b: m(b if isinstance(b, torch.Tensor) else b[0]))
    was_training, outs = model.training, []
    model.eval()
    try:
        with torch.inference_mode():
            outs = [forward(model, _to_device(batch, device)) for batch in _epoch_source(data)[0]()]
    finally:
        model.train(was_training)
    if not outs:
        raise ValueError("predict: data yielded no batches")
    if isinstance(outs[0], Mapping):
        return {k: torch.cat([o[k].cpu() for o in outs]) for k in outs[0]}
    if isinstance(outs[0], (list, tuple)):
        return tuple(torch.cat([o[i].cpu() for o in outs]) for i in range(len(outs[0])))
    return torch.cat([o.cpu() for o in outs])
