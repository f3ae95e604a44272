"""The :class:`Trainer` loop, its data helpers (:class:`cycle_zip`), checkpoints, :func:`predict`."""
from __future__ import annotations

import itertools
import math
import random
import warnings
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
from .config import (CHECKPOINT_FORMAT, HISTORY_COLUMNS, STALL_TOLERANCE, CheckpointError,
                     NonFiniteGradientError, NonFiniteLossError, NonFiniteWeightsError, TrainConfig,
                     lr_factor)

_CHECKPOINT_KEYS = ("model", "optimizer", "scaler", "step", "epoch", "batches_in_epoch", "rng_now",
                    "rng_epoch_start", "history", "best", "bad_evals", "last_eval_step", "config")



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


def _nonfinite(named: Iterable[tuple[str, Any]]) -> list[str]:
    """Names of the floating-point tensors holding a NaN or inf (one device sync if none do)."""
    named = [(n, t) for n, t in named if isinstance(t, torch.Tensor)
             and (t.is_floating_point() or t.is_complex()) and t.numel()]
    if not named:
        return []
    device = named[0][1].device
    # Fast path, same answer: a tensor's sum is finite only when every element is (NaN and inf
    # propagate through the sum), and a sum is far cheaper than isfinite + all. A non-finite sum
    # (a non-finite element, or finite elements overflowing) goes to the exact check below.
    if bool(torch.stack([torch.isfinite(t.sum()).to(device) for _, t in named]).all()):
        return []
    finite = torch.stack([torch.isfinite(t).all().to(device) for _, t in named])
    return [] if bool(finite.all()) else [n for (n, _), ok in zip(named, finite.tolist()) if not ok]


def _listed(names: list[str], most: int = 8) -> str:
    return ", ".join(names[:most]) + (f" and {len(names) - most} more" if len(names) > most else "")


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

    Non-finite values stop the run: a NaN/inf loss or term (:class:`NonFiniteLossError`), or
    gradient (:class:`NonFiniteGradientError`; not with fp16 loss scaling, which skips such
    steps itself) raises before the optimizer step, and a checkpoint is never written from (or
    resumed from) NaN/inf weights or optimizer state (:class:`NonFiniteWeightsError`).
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
        names = {id(p): n for n, p in model.named_parameters()}
        self._param_names = {id(p): names.get(id(p), f"param_groups[{i}][{j}]")
                             for i, g in enumerate(self.optimizer.param_groups)
                             for j, p in enumerate(g["params"])}
        self.amp = runtime.use_amp(self.device, config.amp)  # fp16 (no bf16) needs loss scaling
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp
                                           and not torch.cuda.is_bf16_supported())
        self.step = self.epoch = self._batches_in_epoch = self._bad_evals = 0
        self.should_stop = self._seeded = False  # a callback may set should_stop
        self._rows: list[tuple] = []
        self._best: dict | None = None
        self._last_eval_step = self._sched_total = None
        self._last_checkpoint: tuple[Path, int] | None = None  # (path, step) of the last good one
        self.flags: list[str] = []  # see fit
        self._stopped_early = False  # patience ended the last fit
        self._rng_epoch_start: dict | None = None
        self._resume_rng: tuple[dict, dict] | None = None

    def fit(self, train_data: Any, val_data: Any = None,
            val_fn: Callable[[nn.Module], Mapping[str, float]] | None = None) -> pd.DataFrame:
        """Train; evaluate on ``val_data`` (loss, terms, metrics) and/or ``val_fn(model)``
        every ``eval_every`` and when training ends. Returns the History.

        A diverged run (a far too high lr) can end at chance level without failing, so with
        ``config.monitor`` set the run is flagged, in ``self.flags`` and the History's
        ``attrs['flags']`` and by a ``RuntimeWarning``, when the monitor's best finite value is
        not better than a reference by more than ``max(min_delta, STALL_TOLERANCE *
        |reference|)`` (1%) in the ``mode`` direction: ``'at_chance'`` with ``config.chance``
        as the reference, else ``'stalled'`` with the first evaluation's value (from two
        evaluations on; a run that learned all it could before its first evaluation is flagged
        too). ``'not_finite'``: the monitor was never finite. ``min_delta`` sets what counts as
        a meaningful gain.
        """
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
        self.should_stop, self.flags, self._stopped_early = False, [], False
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
            if bar.total and bar.n < bar.total:  # stopped early: a finished bar, not a red one at 95 %
                bar.set_description(f"train (stopped at step {self.step})", refresh=False)
                bar.total = bar.n
                bar.refresh()
        finally:
            bar.close()
        if validating and cfg.monitor is not None:
            self.flags, message = self._stall_flags()
            if message:
                warnings.warn(message, RuntimeWarning, stacklevel=2)
        if cfg.checkpoint_path is not None:  # the trajectory's end, before restoring the best
            self.save_checkpoint()
        if cfg.restore_best and self._best is not None:
            self.model.load_state_dict(self._best["state"])
        history = self.history
        self._call("on_fit_end", history)
        return history

    def _stall_flags(self) -> tuple[list[str], str]:
        """(flags, warning) of the monitored metric by the rule in :meth:`fit`'s docstring."""
        cfg = self.config
        values = [(r[0], r[4]) for r in self._rows if r[2] == "val" and r[3] == cfg.monitor]
        if not (finite := [(step, v) for step, v in values if math.isfinite(v)]):
            return (["not_finite"], f"validation {cfg.monitor} was never finite in {len(values)} "
                    "evaluations: the run diverged (lr too high?)") if values else ([], "")
        sign = 1.0 if cfg.mode == "max" else -1.0
        if cfg.chance is not None:
            flag, ref, what = "at_chance", cfg.chance, "chance level (TrainConfig.chance)"
        elif len(values) >= 2:
            flag, ref, what = "stalled", finite[0][1], "its first evaluation"
        else:
            return [], ""
        best_step, best = max(finite, key=lambda sv: sign * sv[1])
        tol = max(cfg.min_delta, STALL_TOLERANCE * abs(ref))
        if sign * (best - ref) > tol:
            return [], ""
        return [flag], (f"validation {cfg.monitor} never got better than {what} {ref:.6g} by more "
                        f"than {tol:.3g} in {len(values)} evaluations (best {best:.6g} at step "
                        f"{best_step}, mode={cfg.mode!r}): the run may have diverged (lr too "
                        "high?) or stopped learning; see Trainer.flags")

    def _last_good(self) -> str:
        """Where the last checkpoint with finite weights is, for error messages."""
        if self._last_checkpoint is None:
            return "no checkpoint was written"
        path, step = self._last_checkpoint
        return f"the last checkpoint (step {step}) is intact: {path}"

    def _at_cap(self) -> bool:
        """The run reached max_steps or epochs (rather than being stopped early)."""
        cfg = self.config
        return bool(cfg.max_steps and self.step >= cfg.max_steps) or bool(cfg.epochs and self.epoch >= cfg.epochs)

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
                raise NonFiniteLossError(f"non-finite loss term {', '.join(bad)} at step {step} "
                                         f"(epoch {epoch}); weights not updated, "
                                         f"{self._last_good()}")
            self._call("on_before_backward", step, loss, terms)
            self.scaler.scale(loss.float()).backward()
            sums = {k: sums.get(k, 0.0) + v for k, v in values.items()}
        if self.scaler.is_enabled():  # pragma: no cover - fp16 on CUDA only
            self.scaler.unscale_(self.optimizer)
        for p in self.params if len(micro) > 1 else ():  # gradient of the mean over batches
            if p.grad is not None:
                p.grad.div_(len(micro))
        self._call("on_after_backward", step)
        if not self.scaler.is_enabled() and (bad := _nonfinite(
                (self._param_names[id(p)], p.grad) for p in self.params)):
            raise NonFiniteGradientError(
                f"non-finite gradient of {_listed(bad)} at step {step} (epoch {epoch}) from a "
                f"finite loss; weights not updated, {self._last_good()}")
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
                if (cfg.patience is not None and self._bad_evals >= cfg.patience
                        and self.step >= cfg.min_steps):
                    self.should_stop = self._stopped_early = True
        self._call("on_eval_end", self.step, metrics)

    @property
    def history(self) -> pd.DataFrame:
        """Tidy rows ``step, epoch, split, name, value``; ``attrs``: best_step, best_value, and
        with a monitor its name and mode (``monitor``, ``mode``) and flags (the list of warnings about the
        run, see :meth:`fit`)."""
        df = pd.DataFrame(self._rows, columns=list(HISTORY_COLUMNS))
        df = df.astype({"step": "int64", "epoch": "int64", "value": "float64"})
        if self._best is not None:
            df.attrs.update(best_step=self._best["step"], best_value=self._best["value"])
        # how the run ended: stopped by patience, or ran into its step/epoch cap (still improving?)
        df.attrs.update(stopped_step=self.step, stopped_early=self._stopped_early,
                        hit_cap=self._at_cap())
        if self.config.monitor is not None:
            df.attrs.update(flags=list(self.flags), monitor=self.config.monitor, mode=self.config.mode)
        return df

    def save_checkpoint(self, path: str | Path | None = None) -> Path:
        """Write model, optimizer, scaler, counters, random states and History atomically
        (default path: ``config.checkpoint_path``); a failed save leaves the old file intact.

        Raises :class:`NonFiniteWeightsError` (writing nothing) when a weight, buffer or
        optimizer state tensor holds a NaN or inf."""
        path = Path(path if path is not None else self.config.checkpoint_path)
        model_state = self.model.state_dict()
        if bad := _nonfinite(itertools.chain(model_state.items(), (
                (f"{self._param_names.get(id(p), '?')} ({k})", v)
                for p, st in self.optimizer.state.items() for k, v in st.items()))):
            raise NonFiniteWeightsError(
                f"checkpoint {path} not written at step {self.step} (epoch {self.epoch + 1}): "
                f"non-finite {_listed(bad)}; {self._last_good()}")
        now = _get_rng()
        config = {k: str(v) if isinstance(v, Path) else v for k, v in asdict(self.config).items()}
        state = {"format": CHECKPOINT_FORMAT, "model": model_state,
                 "optimizer": self.optimizer.state_dict(), "scaler": self.scaler.state_dict(),
                 "step": self.step, "epoch": self.epoch, "batches_in_epoch": self._batches_in_epoch,
                 "rng_now": now, "rng_epoch_start": self._rng_epoch_start
                 if self._batches_in_epoch else now, "history": self._rows, "best": self._best,
                 "bad_evals": self._bad_evals, "last_eval_step": self._last_eval_step,
                 "config": config}
        with atomic_path(path) as tmp:
            torch.save(state, tmp)
        self._last_checkpoint = (path, self.step)
        return path

    def _mismatches(self, state: dict) -> list[str]:
        """How a checkpoint's model and optimizer state differ from this Trainer's."""
        own, saved, out = self.model.state_dict(), state["model"], []
        if not isinstance(saved, Mapping):
            return [f"its model state is a {type(saved).__name__}, not a state dict"]
        if missing := [k for k in own if k not in saved]:
            out.append(f"model keys missing from the checkpoint: {_listed(missing)}")
        if unexpected := [k for k in saved if k not in own]:
            out.append(f"unexpected model keys in the checkpoint: {_listed(unexpected)}")
        out += [f"{k} has shape {tuple(saved[k].shape)} in the checkpoint but "
                f"{tuple(v.shape)} in the model" for k, v in own.items()
                if isinstance(saved.get(k), torch.Tensor) and saved[k].shape != v.shape]
        theirs = state["config"].get("optimizer") if isinstance(state["config"], Mapping) else None
        if theirs is not None and theirs != self.config.optimizer:
            return out + [f"optimizer {theirs!r} in the checkpoint but {self.config.optimizer!r} "
                          "in the config"]
        opt, groups = state["optimizer"], self.optimizer.param_groups
        if not (isinstance(opt, Mapping) and isinstance(opt.get("param_groups"), list)
                and isinstance(opt.get("state"), Mapping)):
            return out + ["its optimizer state is not an optimizer state dict"]
        if len(opt["param_groups"]) != len(groups):
            return out + [f"optimizer param groups: {len(opt['param_groups'])} in the checkpoint "
                          f"but {len(groups)} here"]
        by_index = {}
        for i, (saved_group, group) in enumerate(zip(opt["param_groups"], groups)):
            if len(saved_group["params"]) != len(group["params"]):
                out.append(f"optimizer param group {i} has {len(saved_group['params'])} "
                           f"parameters in the checkpoint but {len(group['params'])} here")
            by_index.update(zip(saved_group["params"], group["params"]))
        for index, entry in opt["state"].items():
            p = by_index.get(index)
            out += [f"optimizer {k} of {self._param_names[id(p)]} has shape {tuple(v.shape)} in "
                    f"the checkpoint but {tuple(p.shape)} here" for k, v in entry.items()
                    if p is not None and isinstance(v, torch.Tensor) and v.dim()
                    and v.shape != p.shape]
        return out

    def resume(self, path: str | Path) -> Trainer:
        """Load a checkpoint of :meth:`save_checkpoint`; the next ``fit`` continues from it.

        Raises :class:`CheckpointError` (a ValueError) naming the file when it cannot be read
        or does not match the model or optimizer (keys, shapes, optimizer kind; checked before
        anything is loaded), and :class:`NonFiniteWeightsError` when it holds NaN/inf. The
        config's learning rate wins over the checkpoint's: when they differ, each param group
        keeps this Trainer's base lr (at the checkpoint's schedule position) and a warning names
        both values.
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"checkpoint {path} does not exist")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:
            raise CheckpointError(f"checkpoint {path} cannot be read: {err}") from err
        if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
            raise CheckpointError(f"{path} is not a clickvision checkpoint "
                                  f"(format {CHECKPOINT_FORMAT})")
        if missing := [k for k in _CHECKPOINT_KEYS if k not in state]:
            raise CheckpointError(f"checkpoint {path} lacks the entries {missing}")
        if problems := self._mismatches(state):
            raise CheckpointError(f"checkpoint {path} does not match this Trainer's model or "
                                  f"optimizer: {'; '.join(problems)}")
        if bad := _nonfinite(itertools.chain(state["model"].items(), (
                (f"optimizer {k} of state {i}", v)
                for i, entry in state["optimizer"]["state"].items() for k, v in entry.items()))):
            raise NonFiniteWeightsError(f"checkpoint {path} holds non-finite {_listed(bad)}; "
                                        "not resumed")
        base_lrs = [group["initial_lr"] for group in self.optimizer.param_groups]
        try:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
        except (RuntimeError, ValueError, KeyError, TypeError) as err:
            raise CheckpointError(f"checkpoint {path} does not match this Trainer's model or "
                                  f"optimizer: {err}") from err
        changed = []
        for i, (group, base) in enumerate(zip(self.optimizer.param_groups, base_lrs)):
            saved = group.get("initial_lr", group["lr"])
            if saved != base:  # the config wins; keep the checkpoint's schedule position
                changed.append(f"lr={saved!r} in the checkpoint but {base!r} in the config"
                               + (f" (param group {i})" if len(base_lrs) > 1 else ""))
                group["lr"] = group["lr"] * base / saved if saved else base
            group["initial_lr"] = base
        if changed:
            warnings.warn(f"checkpoint {path} has {'; '.join(changed)}: training continues with "
                          "the config's lr", UserWarning, stacklevel=2)
        if state["scaler"]:  # pragma: no cover - fp16 on CUDA only
            self.scaler.load_state_dict(state["scaler"])
        self.step, self.epoch, self._batches_in_epoch = (
            state["step"], state["epoch"], state["batches_in_epoch"])
        self._rows, self._best = [tuple(r) for r in state["history"]], state["best"]
        self._bad_evals, self._last_eval_step = state["bad_evals"], state["last_eval_step"]
        self._last_checkpoint, self._seeded = (path, self.step), True
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


def multi_tensor_steps(trainer: Trainer) -> Trainer:
    """Let ``trainer``'s optimizer update all parameters in one multi-tensor (``foreach``) step.

    On the CPU torch's foreach path applies the same per-tensor operations, in the same order,
    as its default for-loop path (the same numbers; ``tests/test_train_foreach.py``), with much
    less Python overhead per parameter: paper A's heads, paper C's networks and paper D's models
    train through it. On CUDA foreach is torch's default for Adam already. Returns ``trainer``.
    """
    for group in trainer.optimizer.param_groups:
        group["foreach"] = True
    return trainer

