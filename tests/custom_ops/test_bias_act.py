"""bias_act against numpy formulas of each activation and its derivative."""

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
