"""The loss terms against closed forms, on stand-in networks whose gradients are known."""

import numpy as np
import pytest
import tensorflow as tf

from tf_stylegan2 import losses
from tf_stylegan2.networks import Generator
from train_helpers import tiny_config


class QuadraticD:
    """D(x) = sum(a * x^2) per image: grad_x D = 2 a x, so |grad|^2 = 4 a^2 sum(x^2)."""

    c_dim = 0

    def __init__(self, a: float):
        self.a = tf.Variable(a)

    def __call__(self, x, c=None):
        return tf.reduce_sum(self.a * tf.square(x), axis=[1, 2, 3])[:, None]


class LinearSynthesis:
    """img = reshape(flatten(ws) @ M): J^T y = M @ flatten(y), whatever ws is."""

    def __init__(self, num_ws, w_dim, shape, seed=0):
        self.shape = shape
        self.M = tf.constant(np.random.RandomState(seed).randn(num_ws * w_dim, int(np.prod(shape))), tf.float32)

    def synthesis(self, ws, noise_mode="random", noise_seed=None):
        flat = tf.reshape(ws, [tf.shape(ws)[0], -1]) @ self.M
        return tf.reshape(flat, [-1, *self.shape])


def test_r1_penalty_and_its_weight_gradient():
    D = QuadraticD(0.7)
    x = tf.constant(np.random.randn(3, 4, 4, 2).astype(np.float32))
    with tf.GradientTape() as tape:
        penalty, logits = losses.r1_penalty(D, x, None)
        total = tf.reduce_sum(penalty)
    sq = np.sum(np.square(x.numpy()), axis=(1, 2, 3))
    np.testing.assert_allclose(penalty.numpy(), 4 * 0.7**2 * sq, rtol=1e-5)
    np.testing.assert_allclose(logits.numpy(), 0.7 * sq, rtol=1e-5)
    # Second order: d/da sum(4 a^2 x^2) = 8 a sum(x^2).
    np.testing.assert_allclose(tape.gradient(total, D.a).numpy(), 8 * 0.7 * sq.sum(), rtol=1e-5)


def test_path_lengths_of_a_linear_synthesis():
    num_ws, w_dim, shape = 3, 5, (4, 4, 2)
    G = LinearSynthesis(num_ws, w_dim, shape)
    ws = tf.constant(np.random.randn(2, num_ws, w_dim).astype(np.float32))
    y = (np.random.randn(2, *shape) / 4).astype(np.float32)  # / sqrt(H * W)
    lengths = losses.path_lengths(G, ws, tf.constant(y))
    jty = (G.M.numpy() @ y.reshape(2, -1).T).T.reshape(2, num_ws, w_dim)
    np.testing.assert_allclose(lengths.numpy(), np.sqrt(np.mean(np.sum(jty**2, axis=2), axis=1)), rtol=1e-5)


def test_path_length_penalty_uses_the_moved_mean():
    lengths = tf.constant([1.0, 2.0, 4.0])
    penalty, moved = losses.path_length_penalty(lengths, tf.constant(0.5), decay=0.01)
    expected_mean = 0.5 + 0.01 * (7 / 3 - 0.5)  # stylegan2-ada: pl_mean.lerp(lengths.mean(), 0.01)
    np.testing.assert_allclose(moved.numpy(), expected_mean, rtol=1e-6)
    np.testing.assert_allclose(penalty.numpy(), (lengths.numpy() - expected_mean) ** 2, rtol=1e-6)
    with tf.GradientTape() as tape:
        tape.watch(lengths)
        p, _ = losses.path_length_penalty(lengths, tf.constant(0.5), decay=0.01)
        total = tf.reduce_sum(p)
    np.testing.assert_allclose(tape.gradient(total, lengths).numpy(), 2 * (lengths.numpy() - expected_mean),
                               rtol=1e-5)  # the mean is held constant


def test_logistic_losses():
    D = QuadraticD(1.0)
    x = tf.constant(np.random.randn(4, 2, 2, 1).astype(np.float32) * 0.5)
    logit = np.sum(x.numpy() ** 2, axis=(1, 2, 3))
    softplus = lambda t: np.log1p(np.exp(t))  # noqa: E731
    g, _ = losses.generator_loss(D, x, None)
    f, _ = losses.discriminator_fake_loss(D, x, None)
    r, _ = losses.discriminator_real_loss(D, x, None)
    np.testing.assert_allclose(g.numpy(), softplus(-logit), rtol=1e-5)
    np.testing.assert_allclose(f.numpy(), softplus(logit), rtol=1e-5)
    np.testing.assert_allclose(r.numpy(), softplus(-logit), rtol=1e-5)


@pytest.mark.parametrize("cutoff", [1, 3, 6])
def test_style_mixing_and_w_avg(cutoff):
    cfg = tiny_config(16, c_dim=2)
    G = Generator(cfg.G)
    G.mapping.w_avg.assign(np.random.randn(16).astype(np.float32))
    z, z_mix = tf.random.normal([5, 16]), tf.random.normal([5, 16])
    c = tf.one_hot([0, 1, 1, 0, 1], 2)
    ws, w_avg = losses.map_with_mixing(G, z, c, z_mix, tf.constant(cutoff))
    main, mixed = G.mapping(z, c).numpy(), G.mapping(z_mix, c).numpy()
    assert G.num_ws == 6
    np.testing.assert_allclose(ws.numpy()[:, :cutoff], main[:, :cutoff], rtol=1e-6)
    np.testing.assert_allclose(ws.numpy()[:, cutoff:], mixed[:, cutoff:], rtol=1e-6)
    mean = main[:, 0].mean(axis=0)
    np.testing.assert_allclose(w_avg.numpy(), mean + 0.995 * (G.mapping.w_avg.numpy() - mean), rtol=1e-5, atol=1e-6)
