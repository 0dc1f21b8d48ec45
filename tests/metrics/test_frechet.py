"""Fréchet distance and feature statistics against closed forms and an independent eigen-decomposition."""

import numpy as np
import pytest

from tf_stylegan2.metrics import frechet
from tf_stylegan2.metrics.frechet import frechet_distance, mean_cov


def reference_fd(mu1, s1, mu2, s2):
    """tr((s1 s2)^1/2) = tr((h s2 h)^1/2) with h = s1^1/2 (symmetric), from numpy eigh only."""
    w, v = np.linalg.eigh(s1)
    h = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    root_trace = np.sqrt(np.clip(np.linalg.eigvalsh(h @ s2 @ h), 0, None)).sum()
    return np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * root_trace


def random_spd(rs, dim, rank=None):
    a = rs.randn(rank or 2 * dim, dim)
    return a.T @ a / len(a)


def test_diagonal_covariances_closed_form():
    rs = np.random.RandomState(0)
    mu1, mu2 = rs.randn(6), rs.randn(6)
    d1, d2 = rs.uniform(0.1, 3, 6), rs.uniform(0.1, 3, 6)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum(d1 + d2 - 2 * np.sqrt(d1 * d2))
    assert frechet_distance(mu1, np.diag(d1), mu2, np.diag(d2)) == pytest.approx(expected, rel=1e-12)
    assert frechet_distance(mu1, np.diag(d1), mu1, np.diag(d1)) == pytest.approx(0.0, abs=1e-12)
    # 1-D: (m1 - m2)^2 + (s1 - s2)^2 for standard deviations s.
    assert frechet_distance([1.0], [[4.0]], [3.0], [[9.0]]) == pytest.approx(4.0 + 1.0)


def test_full_covariances_match_the_eigen_reference():
    rs = np.random.RandomState(1)
    for dim in (2, 10, 40):
        mu1, mu2 = rs.randn(dim), rs.randn(dim)
        s1, s2 = random_spd(rs, dim), random_spd(rs, dim)
        fd = frechet_distance(mu1, s1, mu2, s2)
        assert isinstance(fd, float)
        assert fd == pytest.approx(reference_fd(mu1, s1, mu2, s2), rel=1e-9)


def test_rank_deficient_covariances_keep_the_real_part():
    """Fewer samples than features: sqrtm returns complex round-off, the distance stays real and right."""
    import scipy.linalg

    rs = np.random.RandomState(0)
    s1, s2 = np.cov(rs.randn(3, 8), rowvar=False), np.cov(rs.randn(4, 8), rowvar=False)
    assert np.iscomplexobj(scipy.linalg.sqrtm(s1 @ s2))  # the case this test is about
    mu = np.zeros(8)
    assert frechet_distance(mu, s1, mu, s2) == pytest.approx(reference_fd(mu, s1, mu, s2), abs=1e-6)


def test_non_finite_square_root_retries_with_eps_on_the_diagonal(monkeypatch):
    calls = []
    real_sqrtm = frechet.scipy.linalg.sqrtm

    def fake_sqrtm(m):
        calls.append(m.copy())
        return np.full_like(m, np.inf) if len(calls) == 1 else real_sqrtm(m)

    monkeypatch.setattr(frechet.scipy.linalg, "sqrtm", fake_sqrtm)
    s1, s2 = np.diag([1.0, 4.0]), np.diag([9.0, 1.0])
    fd = frechet_distance(np.zeros(2), s1, np.zeros(2), s2, eps=1e-3)
    np.testing.assert_allclose(calls[1], (s1 + 1e-3 * np.eye(2)) @ (s2 + 1e-3 * np.eye(2)))
    # The trace term keeps the given covariances; only the square root sees the offset.
    assert fd == pytest.approx(15.0 - 2 * (np.sqrt(1.001 * 9.001) + np.sqrt(4.001 * 1.001)), rel=1e-12)


def test_mean_cov_is_the_maximum_likelihood_estimate():
    x = np.random.RandomState(2).randn(50, 5) * [1, 2, 3, 4, 5] + 7
    mu, sigma = mean_cov(x.astype(np.float32))
    np.testing.assert_allclose(mu, x.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(sigma, np.cov(x, rowvar=False, bias=True), rtol=1e-5)
    with pytest.raises(ValueError):
        mean_cov(np.zeros([1, 5]))
    with pytest.raises(ValueError, match="mismatched statistics"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))


def samples_with_moments(rs, n, mu, sigma):
    """n rows whose maximum-likelihood mean and covariance are exactly mu and sigma: whitened noise
    (zero mean, identity covariance), coloured by a square root of sigma."""
    x = rs.randn(n, len(mu))
    x -= x.mean(axis=0)
    w, v = np.linalg.eigh(x.T @ x / n)
    x = x @ (v / np.sqrt(w)) @ v.T
    w, v = np.linalg.eigh(sigma)
    return x @ (v * np.sqrt(w)) @ v.T + mu


def test_fid_from_features_is_the_closed_form_of_the_gaussians():
    """Gaussians with diagonal covariances: FD = |mu1 - mu2|^2 + sum (s1 + s2 - 2 sqrt(s1 s2))."""
    from tf_stylegan2.metrics import fid_from_features

    rs = np.random.RandomState(3)
    mu1, mu2 = rs.randn(5), rs.randn(5)
    d1, d2 = rs.uniform(0.2, 2, 5), rs.uniform(0.2, 2, 5)
    real, fake = samples_with_moments(rs, 400, mu1, np.diag(d1)), samples_with_moments(rs, 300, mu2, np.diag(d2))
    expected = np.sum((mu1 - mu2) ** 2) + np.sum(d1 + d2 - 2 * np.sqrt(d1 * d2))
    assert fid_from_features(real, fake) == pytest.approx(expected, rel=1e-9)
    # A full covariance: the same as the eigen reference of the exact moments.
    s1, s2 = random_spd(rs, 5), random_spd(rs, 5)
    real, fake = samples_with_moments(rs, 400, mu1, s1), samples_with_moments(rs, 300, mu2, s2)
    assert fid_from_features(real, fake) == pytest.approx(reference_fd(mu1, s1, mu2, s2), rel=1e-9)
