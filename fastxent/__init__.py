"""fastxent: exact cross-entropy at memory speed.

The functional API follows ``torch.nn.functional`` and ``sklearn.metrics``; :class:`Accumulator`
is the mergeable streaming state, :class:`Score` its result; :func:`score` streams prediction
files and Arrow data through it.
"""

from . import forking  # noqa: F401 (registers the fork hook: serial kernels in forked children)
from .api import (
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cross_entropy,
    log_loss,
    nll_loss,
)
from .errors import FastxentError, InputTypeError, InputValueError
from .kernels import _jit_enabled  # noqa: F401 (refuses NUMBA_DISABLE_JIT=1 in one sentence)
from .report import report
from .score import score
from .state import Accumulator, Score
from .warmup import warmup

__version__ = "0.1.0"

__all__ = [
    "Accumulator",
    "FastxentError",
    "InputTypeError",
    "InputValueError",
    "Score",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "cross_entropy",
    "log_loss",
    "nll_loss",
    "report",
    "score",
    "warmup",
]
