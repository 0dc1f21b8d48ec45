"""Kernel distance (KID, Bińkowski et al. 2018): the unbiased estimate of the squared maximum mean
discrepancy with the cubic polynomial kernel k(x, y) = (x . y / F + 1)^3, averaged over random
subsets, as stylegan2-ada's kernel_inception_distance computes it.
"""

from __future__ import annotations

import numpy as np


def kernel_distance(
    features_a: np.ndarray,
    features_b: np.ndarray,
    num_subsets: int = 100,
    max_subset_size: int = 1000,
    seed: int = 0,
) -> float:
    """Mean over ``num_subsets`` subsets of m = min(N_a, N_b, max_subset_size) rows of each set of

        MMD^2_u = sum_{i != j} [k(a_i, a_j) + k(b_i, b_j)] / (m (m - 1)) - 2 sum_{i, j} k(a_i, b_j) / m^2

    Unbiased, so it can be slightly negative for equal distributions. Subsets are drawn without
    replacement by ``np.random.RandomState(seed)`` (a draw from ``a``, then from ``b``, per subset).
    """
    a = np.asarray(features_a, dtype=np.float64)
    b = np.asarray(features_b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"need [N, F] features with the same F, got {a.shape} and {b.shape}")
    m = min(a.shape[0], b.shape[0], max_subset_size)
    if m < 2:
        raise ValueError("need at least 2 samples in each set")
    f = a.shape[1]
    rs = np.random.RandomState(seed)
    total = 0.0
    for _ in range(num_subsets):
        x = a[rs.choice(a.shape[0], m, replace=False)]
        y = b[rs.choice(b.shape[0], m, replace=False)]
        within = (x @ x.T / f + 1.0) ** 3 + (y @ y.T / f + 1.0) ** 3
        between = (x @ y.T / f + 1.0) ** 3
        total += (within.sum() - np.trace(within)) / (m * (m - 1)) - 2.0 * between.sum() / (m * m)
    return float(total / num_subsets)


def kid_from_features(
    real: np.ndarray, fake: np.ndarray, num_subsets: int = 100, max_subset_size: int = 1000, seed: int = 0
) -> float:
    """KID between real ``[N, D]`` and generated ``[M, D]`` features, with NVIDIA's draw order per
    subset: generated rows first, then real ones."""
    return kernel_distance(fake, real, num_subsets, max_subset_size, seed)
