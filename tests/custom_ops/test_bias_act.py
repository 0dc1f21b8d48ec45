"""bias_act against numpy formulas of each activation and its derivative."""

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import numpy_ref
from custom_ops import ACTIVATIONS, bias_act


def test_same_activation_table_as_reference():
    assert set(ACTIVATIONS) == set(numpy_ref.ACTIVATIONS)
    for name, (_, _, alpha, gain) in numpy_ref.ACTIVATIONS.items():
        assert ACTIVATIONS[name].def_alpha == pytest.approx(alpha)
        assert ACTIVATIONS[name].def_gain == pytest.approx(gain)


@pytest.mark.parametrize("act", sorted(numpy_ref.ACTIVATIONS))
@pytest.mark.parametrize("clamp", [None, 0.7])
def test_forward_and_gradient(act, clamp):
    func, dfunc, alpha, gain = numpy_ref.ACTIVATIONS[act]
    x = np.random.randn(3, 4, 5, 6).astype(np.float64)
    b = np.random.randn(6).astype(np.float64)
    pre = x + b
    ref = func(pre, alpha) * gain
    dref = dfunc(pre, alpha) * gain
    if clamp is not None:
        dref = np.where(np.abs(ref) > clamp, 0.0, dref)
        ref = np.clip(ref, -clamp, clamp)

    xt, bt = tf.constant(x), tf.constant(b)
    with tf.GradientTape() as tape:
        tape.watch([xt, bt])
        y = bias_act(xt, bt, act=act, clamp=clamp)
    dx, db = tape.gradient(y, [xt, bt])
    # float64 throughout; 1e-7 because TF's LeakyRelu keeps alpha as a float32 attribute.
    np.testing.assert_allclose(y.numpy(), ref, rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(dx.numpy(), dref, rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(db.numpy(), dref.sum(axis=(0, 1, 2)), rtol=1e-7, atol=1e-9)


def test_alpha_gain_and_axis():
    x = np.random.randn(4, 3, 5).astype(np.float32)
    b = np.random.randn(3).astype(np.float32)
    y = bias_act(tf.constant(x), tf.constant(b), axis=1, act="lrelu", alpha=0.1, gain=3.0).numpy()
    pre = x + b[None, :, None]
    np.testing.assert_allclose(y, np.where(pre > 0, pre, 0.1 * pre) * 3.0, rtol=1e-6)


def test_rejects_bad_arguments():
    with pytest.raises(ValueError, match="unknown activation 'gelu'"):
        bias_act(tf.zeros([2, 3]), act="gelu")
    with pytest.raises(ValueError, match="does not match"):
        bias_act(tf.zeros([2, 3]), tf.zeros([4]))
    with pytest.raises(ValueError, match="clamp"):
        bias_act(tf.zeros([2, 3]), clamp=-1.0)


def test_lrelu_second_order_gradient():
    """R1's shape of derivative: d/dv |d/dx sum(v * lrelu(x + b))|^2 = 2 v (gain * slope)^2, and
    nothing flows to b (the slope is piecewise constant in x + b)."""
    x = np.random.randn(3, 4, 5, 6)
    b, v = np.random.randn(6), np.random.randn(3, 4, 5, 6)
    xt, bt, vt = tf.constant(x), tf.constant(b), tf.constant(v)
    with tf.GradientTape(persistent=True) as outer:
        outer.watch([bt, vt])
        with tf.GradientTape() as inner:
            inner.watch(xt)
            y = tf.reduce_sum(vt * bias_act(xt, bt, act="lrelu", gain=1.5))
        penalty = tf.reduce_sum(inner.gradient(y, xt) ** 2)
    slope = np.where(x + b > 0, 1.0, 0.2) * 1.5
    np.testing.assert_allclose(outer.gradient(penalty, vt).numpy(), 2 * v * slope**2, rtol=1e-7)
    db = outer.gradient(penalty, bt, unconnected_gradients=tf.UnconnectedGradients.ZERO)
    np.testing.assert_array_equal(db.numpy(), np.zeros(6))


R1_OF_A_CONV_STACK = """
import tensorflow as tf
from custom_ops import bias_act, conv2d_resample, setup_filter
f = setup_filter([1, 3, 3, 1])
w = [tf.Variable(tf.random.normal([3, 3, 8, 8])) for _ in range(2)]
b = [tf.Variable(tf.random.normal([8])) for _ in range(2)]
def D(x):
    x = bias_act(conv2d_resample(x, w[0], padding=1), b[0], act="lrelu")
    return bias_act(conv2d_resample(x, w[1], f=f, down=2, padding=1), b[1], act="lrelu")
@tf.function
def steps(x):
    with tf.GradientTape() as outer:
        with tf.GradientTape() as inner:
            inner.watch(x)
            logits = D(x)
        r1 = tf.reduce_sum(inner.gradient(logits, x) ** 2)
        loss = tf.reduce_sum(tf.nn.softplus(D(x))) + tf.reduce_sum(tf.nn.softplus(-D(2 * x))) + r1
    return outer.gradient(loss, w + b, unconnected_gradients=tf.UnconnectedGradients.ZERO)
steps(tf.random.normal([4, 16, 16, 8]))
"""


def test_reference_lrelu_gradients_leave_grappler_nothing_to_report(tmp_path):
    """A discriminator's losses and R1 through the reference ops compile without grappler's
    'remapper failed' E-line (TF's LeakyRelu gradient reads the bias add the remapper fuses away)."""
    script = tmp_path / "r1.py"
    script.write_text(R1_OF_A_CONV_STACK)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, TF_STYLEGAN2_OPS="ref", PYTHONPATH=root)
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "remapper failed" not in r.stderr and " meta_optimizer.cc" not in r.stderr, r.stderr[-3000:]
