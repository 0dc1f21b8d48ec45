"""Inception score on hand-made probability tables with known answers."""

import numpy as np
import pytest

from tf_stylegan2.metrics import inception_score


def logits_of(p):
    return np.log(np.asarray(p, np.float64))


def test_one_hot_predictions_spread_over_k_classes_score_k():
    # Confident predictions (softmax exactly one-hot in float64), each class equally often per split.
    classes = 4
    logits = np.full([40, classes], -1e4)
    logits[np.arange(40), np.arange(40) % classes] = 0.0
    mean, std = inception_score(logits, num_splits=10)
    assert mean == pytest.approx(classes, rel=1e-12) and std == pytest.approx(0.0, abs=1e-12)


def test_identical_predictions_score_one():
    logits = np.tile(np.random.RandomState(0).randn(1, 7), [30, 1])
    assert inception_score(logits, num_splits=3) == pytest.approx((1.0, 0.0), abs=1e-12)


def test_two_class_table():
    """Rows (0.9, 0.1) and (0.1, 0.9) in equal numbers: marginal (0.5, 0.5), KL = 0.9 ln 1.8 + 0.1 ln 0.2."""
    p = np.array([[0.9, 0.1], [0.1, 0.9]] * 10)
    expected = np.exp(0.9 * np.log(1.8) + 0.1 * np.log(0.2))
    assert inception_score(logits_of(p), num_splits=2) == pytest.approx((expected, 0.0), rel=1e-12)


def test_splits_are_consecutive_and_std_is_over_splits():
    # First split: two confident classes (score 2); second split: all rows alike (score 1).
    first = np.full([6, 3], -1e4)
    first[np.arange(6), np.arange(6) % 2] = 0.0
    second = np.zeros([6, 3])
    mean, std = inception_score(np.concatenate([first, second]), num_splits=2)
    assert mean == pytest.approx(1.5) and std == pytest.approx(0.5)
    # Logits are shifted freely (softmax): the same score.
    assert inception_score(np.concatenate([first, second]) + 3.0, num_splits=2) == pytest.approx((1.5, 0.5))
    with pytest.raises(ValueError):
        inception_score(np.zeros([5, 3]), num_splits=10)
