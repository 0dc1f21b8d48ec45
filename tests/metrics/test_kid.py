"""Kernel distance: the unbiased MMD^2 estimate with the cubic kernel, against direct loops."""

import numpy as np
import pytest

from tf_stylegan2.metrics.kid import kernel_distance


def direct_mmd2(x, y):
    """Unbiased MMD^2 written out term by term."""
    m, f = len(x), x.shape[1]
    k = lambda a, b: (a @ b / f + 1.0) ** 3  # noqa: E731
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    return xx + yy - 2 * xy


def test_matches_direct_computation_over_the_same_subsets():
    rs = np.random.RandomState(0)
    a, b = rs.randn(30, 4), rs.randn(25, 4) + 0.5
    subsets, size, seed = 3, 12, 5
    draw = np.random.RandomState(seed)  # the documented draw order: a subset of a, then of b
    expected = np.mean([direct_mmd2(a[draw.choice(30, size, replace=False)], b[draw.choice(25, size, replace=False)])
                        for _ in range(subsets)])
    kid = kernel_distance(a, b, num_subsets=subsets, max_subset_size=size, seed=seed)
    assert kid == pytest.approx(expected, rel=1e-10)
    # Without subsampling (m = all rows, one subset) it is the plain unbiased estimate.
    kid = kernel_distance(a[:20], b[:20], num_subsets=1, max_subset_size=20)
    assert kid == pytest.approx(direct_mmd2(a[:20], b[:20]), rel=1e-10)


def test_unbiased_near_zero_for_one_distribution_and_grows_with_the_shift():
    rs = np.random.RandomState(1)
    same = kernel_distance(rs.randn(400, 8), rs.randn(400, 8), num_subsets=20, max_subset_size=200)
    shifted = kernel_distance(rs.randn(400, 8), rs.randn(400, 8) + 1.0, num_subsets=20, max_subset_size=200)
    assert abs(same) < 0.02 < 1.0 < shifted
    with pytest.raises(ValueError):
        kernel_distance(np.zeros([5, 3]), np.zeros([5, 4]))


def numpy_unbiased_mmd2(x, y):
    """Unbiased MMD^2 with k(a, b) = (a . b / d + 1)^3 from Gram matrices (Bińkowski et al., eq. 4)."""
    m, n, d = len(x), len(y), x.shape[1]
    kxx, kyy, kxy = [(p @ q.T / d + 1.0) ** 3 for p, q in ((x, x), (y, y), (x, y))]
    return ((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
            - 2 * kxy.mean())


def test_kid_from_features_is_the_unbiased_mmd():
    """With one subset holding every row (m = N) the subsets are permutations of the sets, which the
    MMD does not see: KID is the plain unbiased estimate, whatever the draw order."""
    from tf_stylegan2.metrics import kid_from_features

    rs = np.random.RandomState(4)
    real, fake = rs.randn(60, 6), rs.randn(60, 6) * 1.3 + 0.4
    kid = kid_from_features(real, fake, num_subsets=1, max_subset_size=60)
    assert kid == pytest.approx(numpy_unbiased_mmd2(fake, real), rel=1e-10)
    assert kid > 0.05


def test_kid_draws_generated_rows_first_as_nvidia():
    """stylegan2-ada's compute_kid draws each subset of generated features, then of real ones."""
    from tf_stylegan2.metrics import kid_from_features

    rs = np.random.RandomState(5)
    real, fake = rs.randn(40, 3), rs.randn(50, 3) + 0.3
    draw = np.random.RandomState(7)
    expected = np.mean([numpy_unbiased_mmd2(fake[draw.choice(50, 10, replace=False)],
                                            real[draw.choice(40, 10, replace=False)]) for _ in range(4)])
    assert kid_from_features(real, fake, num_subsets=4, max_subset_size=10, seed=7) == pytest.approx(expected,
                                                                                                      rel=1e-10)
