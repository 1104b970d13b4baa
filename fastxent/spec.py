"""What a loss is, independent of batches and of the target that computes it (CPU or CUDA)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .kernels import codes

_EMPTY = np.empty(0)

_MULTICLASS_INPUTS = {"logits": codes.LOGITS, "logprobs": codes.LOG_PROBS, "probs": codes.PROBS}


@dataclass(frozen=True)
class LossSpec:
    """The batch-independent description of a loss.

    family : "multiclass" (class-index targets), "soft" (probability targets) or "binary"
        (one value per element: binary and multilabel).
    inputs : "logits", "logprobs" or "probs".
    class_weight, pos_weight : float64 vectors (empty: none).
    probs_rules : "sklearn" (``log_loss``: clip to ``[eps, 1-eps]``) or "torch"
        (``binary_cross_entropy``: logs clamped at -100).
    """

    family: str
    inputs: str = "logits"
    class_weight: np.ndarray = field(default_factory=lambda: _EMPTY)
    ignore_index: int = -100
    label_smoothing: float = 0.0
    pos_weight: np.ndarray = field(default_factory=lambda: _EMPTY)
    probs_rules: str = "sklearn"

    def kind_code(self) -> int:
        """The input kind as the kernels know it (:mod:`.kernels.codes`)."""
        if self.family == "binary":
            if self.inputs == "logits":
                return codes.BINARY_LOGITS
            return codes.BINARY_PROBS_TORCH if self.probs_rules == "torch" else codes.BINARY_PROBS_SKLEARN
        return _MULTICLASS_INPUTS[self.inputs]
