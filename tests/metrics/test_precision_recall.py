"""Precision and recall against brute-force k-nearest neighbours, with and without NVIDIA's float16."""

import numpy as np
import pytest

from tf_stylegan2.metrics import precision_recall
from tf_stylegan2.metrics.precision_recall import manifold_radii, within_manifold


def brute_force(real, fake, k, round16=False):
    """Every pairwise distance at once, in float64 (optionally rounded to float16 values as
    NVIDIA's float16 cdist returns them); radius = k-th nearest *other* point."""
    def dist(a, b):
        d = np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))
        return d.astype(np.float16).astype(np.float64) if round16 else d

    def inside(probes, manifold):
        d_mm = dist(manifold, manifold)
        np.fill_diagonal(d_mm, np.inf)  # leave the point itself out: its k-th neighbour among the others
        radii = np.sort(d_mm, axis=1)[:, k - 1]
        return np.mean((dist(probes, manifold) <= radii[None, :]).any(axis=1))

    if round16:
        real, fake = real.astype(np.float16).astype(np.float64), fake.astype(np.float16).astype(np.float64)
    return inside(fake, real), inside(real, fake)


@pytest.mark.parametrize("float16", [False, True])
def test_matches_brute_force_knn(float16):
    real = np.random.RandomState(0).randn(70, 5)
    fake = np.random.RandomState(1).randn(55, 5) + 1.0  # partly overlapping
    expected = brute_force(real, fake, 3, round16=float16)
    assert 0.1 < expected[0] < 0.95 and 0.1 < expected[1] < 0.95
    assert precision_recall(real, fake, nhood_size=3, float16=float16) == pytest.approx(expected, abs=1e-12)
    # k = 1 and k = 5 too.
    for k in (1, 5):
        assert precision_recall(real, fake, nhood_size=k, float16=float16) == pytest.approx(
            brute_force(real, fake, k, round16=float16), abs=1e-12)


def test_identical_sets_are_precision_and_recall_one():
    x = np.random.RandomState(1).randn(50, 8)
    assert precision_recall(x, x.copy()) == (1.0, 1.0)
    far = x + 100.0
    assert precision_recall(x, far) == (0.0, 0.0)


def test_blocks_do_not_change_the_result():
    rs = np.random.RandomState(2)
    real, fake = rs.randn(103, 6), rs.randn(91, 6) + 0.3
    radii = manifold_radii(real, 3, row_batch_size=1000, col_batch_size=1000)
    for rows, cols in [(7, 11), (103, 4), (1, 103), (50, 50)]:
        np.testing.assert_array_equal(manifold_radii(real, 3, rows, cols), radii)
        np.testing.assert_array_equal(within_manifold(fake, real, radii, rows, cols),
                                      within_manifold(fake, real, radii, 1000, 1000))
    assert precision_recall(real, fake, 3, 13, 17) == precision_recall(real, fake, 3)


def test_radius_is_the_kth_other_point_and_too_few_points_fail():
    line = np.array([[0.0], [1.0], [3.0], [7.0], [15.0]])  # gaps 1, 2, 4, 8
    np.testing.assert_array_equal(manifold_radii(line, 1, float16=False), [1, 1, 2, 4, 8])
    np.testing.assert_array_equal(manifold_radii(line, 3, float16=False), [7, 6, 4, 7, 14])
    with pytest.raises(ValueError, match="at least 4 points"):
        manifold_radii(line[:3], 3)
