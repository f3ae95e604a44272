"""One training loop for every model of the four papers.

In the spirit of d2l's ``Trainer`` (d2l.ai, section 3.2), but explicit. A loss is
``loss_fn(model, batch) -> loss`` or ``-> (loss, {term: value})``, so multi-term losses
(paper A eq. (12) count/position terms, paper C's MMD/pair/source terms) log each term.
:meth:`Trainer.fit` returns a tidy History ``step, epoch, split, name, value`` (steps and
epochs count from 1). On the CPU one seed gives one History, evaluation never touches the
training random stream, and :meth:`Trainer.resume` continues bit-identically (it replays the
interrupted epoch's data order from the random state saved at the epoch's start).

Modules: :mod:`.config` (settings, schedule), :mod:`.callbacks` (hooks, gradient norms),
:mod:`.loop` (the Trainer, checkpoints, ``predict``).
"""
from .batched import MemberBatches, MemberStack, batch_stream, fit_members  # K members as one model
from .callbacks import Callback, GradNormRecorder, grad_norms_of_terms
from .config import (CHECKPOINT_FORMAT, HISTORY_COLUMNS, OPTIMIZERS, SCHEDULES, STALL_TOLERANCE, CheckpointError,
                     NonFiniteGradientError, NonFiniteLossError, NonFiniteWeightsError, TrainConfig,
                     TrainConfigError, lr_factor)
from .loop import Trainer, cycle_zip, multi_tensor_steps, predict

__all__ = ["CHECKPOINT_FORMAT", "HISTORY_COLUMNS", "OPTIMIZERS", "SCHEDULES", "STALL_TOLERANCE", "Callback",
           "CheckpointError", "GradNormRecorder", "MemberBatches", "MemberStack", "NonFiniteGradientError",
           "NonFiniteLossError", "NonFiniteWeightsError", "TrainConfig", "TrainConfigError", "Trainer",
           "batch_stream", "cycle_zip", "fit_members", "grad_norms_of_terms", "lr_factor", "multi_tensor_steps",
           "predict"]
