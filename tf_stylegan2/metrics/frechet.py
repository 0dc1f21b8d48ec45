"""Fréchet distance between Gaussians fitted to features (FID's formula, Heusel et al. 2017).

    FD = |mu1 - mu2|^2 + tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^(1/2))

The matrix square root is scipy's (Schur method). As in NVIDIA's implementations only the real part
of the result is kept (round-off makes sqrtm of a product of covariances slightly complex); if the
square root is not finite (near-singular covariances, e.g. fewer samples than features), it is
recomputed with ``eps`` added to both diagonals, as in the TTUR reference implementation that
NVIDIA's FID matches.
"""

from __future__ import annotations

from typing import Tuple

import numpy as np
import scipy.linalg


def mean_cov(features: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Mean ``[F]`` and covariance ``[F, F]`` of ``[N, F]`` features, in float64.

    The covariance is the maximum-likelihood one (divided by N), as stylegan2-ada's feature
    statistics compute it.
    """
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"need [N >= 2, F] features, got shape {x.shape}")
    mu = x.mean(axis=0)
    centered = x - mu
    return mu, centered.T @ centered / x.shape[0]


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray, eps: float = 1e-6
) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2)."""
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != mu1.shape * 2:
        raise ValueError(f"mismatched statistics: mu {mu1.shape} / {mu2.shape}, sigma {sigma1.shape} / {sigma2.shape}")
    root = scipy.linalg.sqrtm(sigma1 @ sigma2)
    if not np.all(np.isfinite(root)):
        offset = np.eye(sigma1.shape[0]) * eps
        root = scipy.linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    distance = np.sum(np.square(mu1 - mu2)) + np.trace(sigma1 + sigma2 - 2.0 * root)
    return float(np.real(distance))


def fid_from_features(real: np.ndarray, fake: np.ndarray) -> float:
    """FID between real ``[N, D]`` and generated ``[M, D]`` features: the Fréchet distance of their
    maximum-likelihood Gaussians, with the square root of ``sigma_fake @ sigma_real`` (NVIDIA's order)."""
    return frechet_distance(*mean_cov(fake), *mean_cov(real))
