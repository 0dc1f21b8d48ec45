"""Inception score (Salimans et al. 2016) as stylegan2-ada's inception_score: ``exp(E_x KL(p(y|x) ||
p(y)))`` over each of ``num_splits`` consecutive splits of the generated images; mean and standard
deviation over the splits. p(y|x) is the softmax of the Inception logits without the output bias
(NVIDIA's ``no_output_bias=True``).
"""

from __future__ import annotations

from typing import Tuple

import numpy as np
import scipy.special


def inception_score(logits: np.ndarray, num_splits: int = 10) -> Tuple[float, float]:
    """(mean, std) of the per-split scores of ``logits [N, classes]``.

    Computed from log-probabilities in float64, so a class probability that underflows to zero
    adds nothing instead of the NaN ``0 * log 0`` would give; otherwise equal to NVIDIA's sum of
    ``p * (log p - log mean p)``. Split ``i`` holds rows ``i * N // num_splits`` up to
    ``(i + 1) * N // num_splits``.
    """
    logits = np.asarray(logits, np.float64)
    if logits.ndim != 2 or len(logits) < num_splits:
        raise ValueError(f"need [N >= {num_splits}, classes] logits, got shape {logits.shape}")
    n = len(logits)
    log_p = scipy.special.log_softmax(logits, axis=1)
    scores = []
    for i in range(num_splits):
        part = log_p[i * n // num_splits : (i + 1) * n // num_splits]
        log_marginal = scipy.special.logsumexp(part, axis=0) - np.log(len(part))
        kl = np.sum(np.exp(part) * (part - log_marginal), axis=1).mean()
        scores.append(np.exp(kl))
    return float(np.mean(scores)), float(np.std(scores))
