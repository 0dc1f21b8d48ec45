"""conv2d_resample's fused paths against the unfused definition computed with numpy/scipy."""

import numpy as np
import pytest
import tensorflow as tf

import numpy_ref
from custom_ops import bias_act, conv2d_resample, setup_filter

F4 = [1, 3, 3, 1]

# (x shape, kernel, in, out, up, down, padding, groups, flip_weight, filter)
CASES = [
    ([2, 5, 5], 3, 4, 6, 1, 1, (1, 1, 1, 1), 1, True, None),  # plain conv
    ([2, 6, 7], 3, 4, 6, 1, 1, (2, 0, 1, 3), 2, False, None),  # asymmetric padding, groups
    ([2, 8, 8], 3, 3, 5, 1, 2, (1, 1, 1, 1), 1, True, F4),  # strided conv after filtering
    ([1, 7, 9], 1, 4, 2, 1, 2, (0, 0, 0, 0), 2, True, F4),  # 1x1 downsample first
    ([2, 4, 5], 3, 4, 6, 2, 1, (1, 1, 1, 1), 1, False, F4),  # transposed conv (synthesis conv0)
    ([2, 4, 4], 3, 6, 4, 2, 1, (1, 1, 1, 1), 2, False, F4),  # grouped transposed conv (fused modconv)
    ([1, 5, 3], 1, 3, 4, 2, 1, (0, 0, 0, 0), 1, True, F4),  # 1x1 upsample after conv (resnet skip)
    ([1, 5, 5], 3, 2, 3, 2, 2, (1, 1, 1, 1), 1, True, [1, 2, 1]),  # up and down
    ([2, 6, 6], 4, 3, 2, 1, 2, (0, 1, 2, 0), 1, False, [1, 1]),  # even kernel, odd filter padding
]


@pytest.mark.parametrize("hw,k,cin,cout,up,down,pad,groups,flip_weight,taps", CASES)
def test_matches_unfused_definition(hw, k, cin, cout, up, down, pad, groups, flip_weight, taps):
    f = None if taps is None else setup_filter(taps)
    x = np.random.randn(hw[0], hw[1], hw[2], cin).astype(np.float32)
    w = np.random.randn(k, k, cin // groups, cout).astype(np.float32)
    y = conv2d_resample(tf.constant(x), tf.constant(w), f, up=up, down=down, padding=pad, groups=groups, flip_weight=flip_weight)
    ref = numpy_ref.conv2d_resample(x, w, f, up, down, pad, groups, flip_weight)
    assert y.shape == ref.shape
    np.testing.assert_allclose(y.numpy(), ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("up,down", [(1, 1), (2, 1), (1, 2)])
def test_same_size_times_factor(up, down):
    f = setup_filter(F4)
    y = conv2d_resample(tf.zeros([3, 8, 8, 5]), tf.zeros([3, 3, 5, 7]), f, up=up, down=down, padding=1)
    assert y.shape == (3, 8 * up // down, 8 * up // down, 7)


def test_second_order_gradient_matches_finite_differences():
    """R1-style penalty |d out / d x|^2 differentiated w.r.t. a weight, against central differences."""
    f = setup_filter(F4)
    x = tf.constant(np.random.randn(2, 8, 8, 3))
    w0 = np.random.randn(3, 3, 3, 4) * 0.3
    w1 = tf.constant(np.random.randn(3, 3, 4, 2) * 0.3)

    def penalty(w0_value):
        with tf.GradientTape() as tape:
            tape.watch(x)
            h = conv2d_resample(x, w0_value, f, down=2, padding=1)
            h = bias_act(h, act="softplus")  # smooth, so finite differences are accurate
            h = conv2d_resample(h, w1, f, up=2, padding=1, flip_weight=False)
            out = tf.reduce_sum(tf.sin(h))
        g = tape.gradient(out, x)
        return tf.reduce_sum(tf.square(g))

    w0t = tf.constant(w0)
    with tf.GradientTape() as tape:
        tape.watch(w0t)
        p = penalty(w0t)
    grad = tape.gradient(p, w0t).numpy()

    eps = 1e-5
    for idx in [(0, 0, 0, 0), (1, 2, 1, 3), (2, 1, 2, 1)]:
        d = np.zeros_like(w0)
        d[idx] = eps
        numeric = (penalty(tf.constant(w0 + d)) - penalty(tf.constant(w0 - d))).numpy() / (2 * eps)
        assert grad[idx] == pytest.approx(numeric, rel=1e-5, abs=1e-7)


def test_rejects_mismatched_channels():
    with pytest.raises(ValueError, match="channels"):
        conv2d_resample(tf.zeros([1, 4, 4, 3]), tf.zeros([3, 3, 2, 4]))
    with pytest.raises(ValueError, match="integers"):
        conv2d_resample(tf.zeros([1, 4, 4, 3]), tf.zeros([3, 3, 3, 4]), up=0)


@pytest.mark.parametrize("hw,k,cin,cout,up,down,pad,groups,flip_weight,taps", CASES)
def test_gradients_are_adjoints_of_the_unfused_definition(hw, k, cin, cout, up, down, pad, groups, flip_weight, taps):
    """The op is linear in x and in w, so TF's gradients must satisfy <A x', g> = <x', dL/dx> and
    <B w', g> = <w', dL/dw> with A, B the numpy definition: backward checked against numpy."""
    f = None if taps is None else setup_filter(taps)
    x = tf.constant(np.random.randn(hw[0], hw[1], hw[2], cin).astype(np.float32))
    w = tf.constant(np.random.randn(k, k, cin // groups, cout).astype(np.float32))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([x, w])
        y = conv2d_resample(x, w, f, up=up, down=down, padding=pad, groups=groups, flip_weight=flip_weight)
        g = tf.constant(np.random.randn(*y.shape).astype(np.float32))
        loss = tf.reduce_sum(y * g)
    dx, dw = (t.numpy() for t in tape.gradient(loss, [x, w]))
    x2, w2 = np.random.randn(*x.shape), np.random.randn(*w.shape)
    ref = lambda a, b: np.sum(numpy_ref.conv2d_resample(a, b, f, up, down, pad, groups, flip_weight) * g.numpy())  # noqa: E731
    assert np.sum(x2 * dx) == pytest.approx(ref(x2, w.numpy()), rel=1e-4, abs=1e-3)
    assert np.sum(w2 * dw) == pytest.approx(ref(x.numpy(), w2), rel=1e-4, abs=1e-3)
