"""Training settings: :class:`TrainConfig` (validated on creation), its errors, the lr schedule."""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch



HISTORY_COLUMNS = ("step", "epoch", "split", "name", "value")
OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("constant", "step", "multistep", "cosine")
CHECKPOINT_FORMAT = 1
STALL_TOLERANCE = 0.01  # share of |reference| a monitor must improve by (Trainer.fit's flags)


class TrainConfigError(ValueError):
    """A :class:`TrainConfig` field has a bad value (the message names the field)."""


class NonFiniteLossError(FloatingPointError):
    """The loss or a logged term became NaN/inf (the message names step, epoch and term).

    Also the base of :class:`NonFiniteGradientError` and :class:`NonFiniteWeightsError`, so
    ``except NonFiniteLossError`` catches every non-finite stop of a run.
    """


class NonFiniteGradientError(NonFiniteLossError):
    """A gradient became NaN/inf from a finite loss; the optimizer step was not applied (the
    message names step, epoch and the parameters)."""


class NonFiniteWeightsError(NonFiniteLossError):
    """Model weights or optimizer state are NaN/inf, so no checkpoint is written from them or
    resumed from them (the message names the tensors and the last good checkpoint)."""


class CheckpointError(ValueError):
    """A checkpoint cannot be read or does not match the Trainer's model or optimizer (the
    message names the file and what mismatched)."""


def _is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float, np.number)) and not isinstance(v, bool) and math.isfinite(v)


def _valid_device(v: Any) -> bool:
    try:
        return isinstance(v, str) and (v == "auto" or bool(torch.device(v)))
    except (RuntimeError, ValueError):
        return False


def _check(accepts: Callable[[Any], bool], want: str, optional: bool = False) -> tuple:
    return (lambda v: (optional and v is None) or accepts(v)), want + (" or None" * optional)


_POS_INT = lambda v: _is_int(v) and v > 0  # noqa: E731
_FIELD_CHECKS = {  # field -> (accepts?, what it must be)
    **{f: _check(_POS_INT, "a positive integer", optional=True)
       for f in ("epochs", "max_steps", "step_size", "patience", "checkpoint_every")},
    **{f: _check(_POS_INT, "a positive integer") for f in ("accumulate", "log_every")},
    **{f: _check(lambda v, c=c: v in c, f"one of {c}") for f, c in (
        ("optimizer", OPTIMIZERS), ("schedule", SCHEDULES), ("schedule_unit", ("step", "epoch")),
        ("mode", ("min", "max")))},
    **{f: _check(lambda v: _is_num(v) and v > 0, "a finite number > 0") for f in ("lr", "gamma")},
    **{f: _check(lambda v: _is_num(v) and v >= 0, "a finite number >= 0")
       for f in ("weight_decay", "min_delta")},
    "momentum": _check(lambda v: _is_num(v) and 0 <= v < 1, "a number in [0, 1)"),
    "grad_clip": _check(lambda v: _is_num(v) and v > 0, "a finite number > 0", optional=True),
    "milestones": _check(lambda v: isinstance(v, (list, tuple)) and all(map(_POS_INT, v))
                         and list(v) == sorted(set(v)), "strictly increasing positive integers"),
    "eval_every": _check(lambda v: v == "epoch" or _POS_INT(v), "'epoch' or a positive integer"),
    "monitor": _check(lambda v: isinstance(v, str) and v != "", "a metric name", optional=True),
    **{f: _check(lambda v: _is_int(v) and v >= 0, "a non-negative integer") for f in ("seed", "min_steps")},
    **{f: _check(lambda v: isinstance(v, bool), "True or False") for f in ("restore_best", "amp")},
    "progress": _check(lambda v: isinstance(v, bool), "True or False", optional=True),
    "device": _check(_valid_device, "'auto' or a torch device string ('cpu', 'cuda:0')"),
    "chance": _check(_is_num, "a finite number", optional=True),
    "checkpoint_path": _check(lambda v: isinstance(v, (str, Path)) and str(v) != "", "a path",
                              optional=True),
}


@dataclass
class TrainConfig:
    """Everything that controls :meth:`Trainer.fit`; every field is validated on creation."""

    epochs: int | None = None  # passes over train_data; with max_steps too, the first reached
    max_steps: int | None = None  # optimizer steps (iterations)
    optimizer: str = "sgd"  # 'sgd' | 'adam' | 'adamw'
    lr: float = 0.01  # base learning rate (param groups may set their own)
    momentum: float = 0.0  # 'sgd' only
    weight_decay: float = 0.0
    schedule: str = "constant"  # 'constant' | 'step' | 'multistep' | 'cosine'
    schedule_unit: str = "step"  # the schedule counts optimizer 'step's or 'epoch's
    step_size: int | None = None  # 'step': lr *= gamma every step_size units
    milestones: tuple[int, ...] = ()  # 'multistep': lr *= gamma at each milestone
    gamma: float = 0.1
    grad_clip: float | None = None  # max global l2 norm of the gradient
    accumulate: int = 1  # batches per optimizer step (gradient accumulation, paper C)
    eval_every: int | str = "epoch"  # evaluate every n steps, or 'epoch' (each epoch's end)
    monitor: str | None = None  # validation metric for model selection / early stopping
    mode: str = "min"  # 'min' | 'max': which direction of monitor is better
    patience: int | None = None  # evaluations without improvement before stopping
    min_delta: float = 0.0  # smallest change of monitor that counts as an improvement
    restore_best: bool = True  # load the best weights (by monitor) when fit ends
    log_every: int = 1  # training rows in the History every n steps
    seed: int = 0
    device: str = "auto"  # 'auto' -> runtime.get_device(), or 'cpu', 'cuda:0', ...
    amp: bool = False  # mixed precision, honoured on CUDA only
    checkpoint_path: str | Path | None = None  # also written when fit ends
    checkpoint_every: int | None = None  # steps between checkpoints
    progress: bool | None = None  # None: a bar unless headless (runtime.is_headless)
    chance: float | None = None  # monitor of a useless model (0.5: balanced binary accuracy)
    min_steps: int = 0  # early stopping (patience) never stops a run before this many steps

    def __post_init__(self) -> None:
        rules = [(name, not ok(getattr(self, name)), want)
                 for name, (ok, want) in _FIELD_CHECKS.items()] + [  # (field, broken?, want)
            ("epochs", self.epochs is None and self.max_steps is None,
             "set when max_steps is None"),
            ("momentum", self.momentum and self.optimizer != "sgd", "0 unless optimizer='sgd'"),
            ("step_size", self.schedule == "step" and self.step_size is None,
             "set when schedule='step'"),
            ("milestones", self.schedule == "multistep" and not self.milestones,
             "non-empty when schedule='multistep'"),
            ("epochs", self.schedule == "cosine" and self.schedule_unit == "epoch"
             and not self.epochs, "set when a cosine schedule counts epochs"),
            ("monitor", self.patience is not None and self.monitor is None,
             "set when patience is set"),
            ("monitor", self.chance is not None and self.monitor is None,
             "set when chance is set"),
            ("checkpoint_path", self.checkpoint_every is not None and self.checkpoint_path is None,
             "set when checkpoint_every is set")]
        for name, broken, want in rules:  # the per-field checks come first, so rules are safe
            if broken:
                raise TrainConfigError(f"TrainConfig.{name} must be {want}, "
                                       f"got {getattr(self, name)!r}")
        self.milestones = tuple(int(m) for m in self.milestones)


def lr_factor(config: TrainConfig, t: int, total: int | None = None) -> float:
    """Multiplier of the base lr after ``t`` completed steps (or epochs: ``schedule_unit``).

    The values of torch's StepLR, MultiStepLR and CosineAnnealingLR(eta_min=0) over ``total``
    units (paper A: x0.1 every 3,200 iterations; paper D: MultiStepLR).
    """
    if config.schedule == "step":
        return config.gamma ** (t // config.step_size)
    if config.schedule == "multistep":
        return config.gamma ** sum(t >= m for m in config.milestones)
    if config.schedule == "cosine":
        if not total:
            raise ValueError("schedule='cosine' needs the run's length: set TrainConfig.max_steps"
                             " or pass train_data with a len()")
        return 0.5 * (1.0 + math.cos(math.pi * min(t, total) / total))
    return 1.0
