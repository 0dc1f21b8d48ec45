"""upfirdn2d and its helpers against numpy/scipy, forward and backward."""

import numpy as np
import pytest
import scipy.signal
import tensorflow as tf

import numpy_ref
from custom_ops import downsample2d, filter2d, setup_filter, upfirdn2d, upsample2d

# (shape NHWC, filter taps or 2-D filter, up, down, padding [x0, x1, y0, y1], flip_filter, gain)
CASES = [
    ([2, 5, 7, 3], [1, 3, 3, 1], (2, 2), (1, 1), (2, 1, 2, 1), False, 4.0),
    ([1, 9, 6, 2], [1, 3, 3, 1], (1, 1), (2, 2), (1, 1, 1, 1), False, 1.0),
    ([2, 7, 5, 1], [1, 2, 3, 4, 5], (1, 1), (3, 2), (2, 3, 0, 4), True, 2.0),
    ([1, 6, 6, 4], np.arange(12.0).reshape(3, 4), (2, 3), (1, 2), (-1, 2, 3, -2), False, 1.0),
    ([3, 4, 5, 2], np.arange(6.0).reshape(2, 3) - 2.5, (3, 1), (2, 2), (0, 2, 1, 0), True, 0.5),
    ([1, 8, 8, 2], [1, 3, 3, 1, 1, 3, 3, 1], (2, 2), (1, 1), (4, 3, 4, 3), False, 4.0),  # separable
]


def _filter(f):
    f = np.asarray(f, np.float32)
    return setup_filter(f, normalize=False) if f.ndim == 1 else f


@pytest.mark.parametrize("shape,f,up,down,pad,flip,gain", CASES)
def test_forward_matches_numpy(shape, f, up, down, pad, flip, gain):
    x = np.random.randn(*shape).astype(np.float32)
    f = _filter(f)
    y = upfirdn2d(tf.constant(x), f, up=up, down=down, padding=pad, flip_filter=flip, gain=gain).numpy()
    ref = numpy_ref.upfirdn2d(x, f, up, down, pad, flip, gain)
    assert y.shape == ref.shape
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape,f,up,down,pad,flip,gain", CASES)
def test_gradient_is_transposed_jacobian(shape, f, up, down, pad, flip, gain):
    """The TF gradient equals J^T g, with J built column by column from the numpy forward."""
    shape = [1] + shape[1:3] + [1]  # one image, one channel keeps the Jacobian small
    f = _filter(f)
    x = np.random.randn(*shape).astype(np.float32)
    cols = []
    for i in range(x.size):
        e = np.zeros(x.size)
        e[i] = 1
        cols.append(numpy_ref.upfirdn2d(e.reshape(shape), f, up, down, pad, flip, gain).ravel())
    jac = np.stack(cols, axis=1)
    g = np.random.randn(jac.shape[0]).astype(np.float32)

    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        y = upfirdn2d(xt, f, up=up, down=down, padding=pad, flip_filter=flip, gain=gain)
        loss = tf.reduce_sum(tf.reshape(y, [-1]) * g)
    grad = tape.gradient(loss, xt).numpy().ravel()
    np.testing.assert_allclose(grad, jac.T @ g, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("up,down,taps", [(2, 1, [1, 3, 3, 1]), (3, 2, [1, 2, 1]), (1, 2, [1, 4, 6, 4, 1])])
def test_one_axis_matches_scipy_upfirdn(up, down, taps):
    """Filtering along one axis only is exactly scipy.signal.upfirdn (full convolution)."""
    x = np.random.randn(11).astype(np.float32)
    h = np.asarray(taps, np.float32)
    ref = scipy.signal.upfirdn(h, x, up, down)
    column = h[:, np.newaxis]  # [fh, 1]: filters along the height axis only
    fh = len(h)
    y = upfirdn2d(tf.constant(x.reshape(1, -1, 1, 1)), column, up=[1, up], down=[1, down], padding=[0, 0, fh - 1, fh - up])
    np.testing.assert_allclose(y.numpy().ravel(), ref, rtol=1e-5, atol=1e-5)


def test_setup_filter_defaults():
    f = setup_filter([1, 3, 3, 1])
    np.testing.assert_allclose(f, np.outer([1, 3, 3, 1], [1, 3, 3, 1]) / 64.0)
    assert setup_filter([1] * 8).ndim == 1  # 8 taps or more: separable
    np.testing.assert_allclose(setup_filter([1, 2], flip_filter=True, gain=4), np.array([[4, 2], [2, 1]]) / 9 * 4)
    with pytest.raises(ValueError, match="separable"):
        setup_filter(np.ones([2, 2]), separable=True)


@pytest.mark.parametrize("size", [4, 5, 8])
def test_resampling_shapes_and_dc_gain(size):
    """up/downsample2d change the size by exactly the factor and preserve a constant signal inside."""
    f = setup_filter([1, 3, 3, 1])
    x = tf.ones([2, size, size, 3]) * 1.5
    up = upsample2d(x, f).numpy()
    down = downsample2d(tf.ones([2, 2 * size, 2 * size, 3]) * 1.5, f).numpy()
    same = filter2d(x, f).numpy()
    assert up.shape == (2, 2 * size, 2 * size, 3)
    assert down.shape == (2, size, size, 3)
    assert same.shape == x.shape
    np.testing.assert_allclose(up[:, 2:-2, 2:-2], 1.5, rtol=1e-6)
    np.testing.assert_allclose(down[:, 1:-1, 1:-1], 1.5, rtol=1e-6)
    np.testing.assert_allclose(same[:, 2:-2, 2:-2], 1.5, rtol=1e-6)


def test_rejects_bad_arguments():
    x = tf.zeros([1, 4, 4, 1])
    with pytest.raises(ValueError, match="integers >= 1"):
        upfirdn2d(x, None, up=0)
    with pytest.raises(ValueError, match="padding"):
        upfirdn2d(x, None, padding=[1, 2, 3])
    with pytest.raises(ValueError, match="no output"):
        upfirdn2d(x, np.ones([6, 6], np.float32))
    with pytest.raises(ValueError, match="NHWC"):
        upfirdn2d(tf.zeros([4, 4]), None)


@pytest.mark.parametrize("dtype", [tf.float16, tf.bfloat16, tf.float64])
def test_low_and_high_precision_agree(dtype):
    x = np.random.randn(2, 6, 6, 3).astype(np.float32)
    f = setup_filter([1, 3, 3, 1])
    ref = upsample2d(tf.constant(x), f).numpy()
    y = upsample2d(tf.cast(x, dtype), f)
    assert y.dtype == dtype
    tol = {tf.float16: 1e-2, tf.bfloat16: 5e-2, tf.float64: 1e-6}[dtype]
    np.testing.assert_allclose(tf.cast(y, tf.float32).numpy(), ref, atol=tol)


def _random_case(seed):
    """A random upfirdn2d configuration whose output is non-empty: odd and even sizes, separable and
    2-D filters, negative and positive padding."""
    rs = np.random.RandomState(seed)
    while True:
        shape = [int(rs.randint(1, 3)), int(rs.randint(2, 10)), int(rs.randint(2, 10)), int(rs.randint(1, 4))]
        separable = rs.rand() < 0.5
        f = rs.randn(int(rs.randint(1, 6))) if separable else rs.randn(int(rs.randint(1, 5)), int(rs.randint(1, 5)))
        up, down = tuple(int(v) for v in rs.randint(1, 4, 2)), tuple(int(v) for v in rs.randint(1, 4, 2))
        pad = tuple(int(v) for v in rs.randint(-1, 4, 4))
        fh, fw = (len(f), len(f)) if f.ndim == 1 else f.shape
        out_h = (shape[1] * up[1] + pad[2] + pad[3] - fh) // down[1] + 1
        out_w = (shape[2] * up[0] + pad[0] + pad[1] - fw) // down[0] + 1
        cropped_h, cropped_w = shape[1] * up[1] + min(pad[2], 0), shape[2] * up[0] + min(pad[0], 0)
        if out_h >= 1 and out_w >= 1 and cropped_h > 0 and cropped_w > 0:
            return shape, f.astype(np.float32), up, down, pad, bool(rs.rand() < 0.5), float(rs.uniform(0.5, 2))


@pytest.mark.parametrize("seed", range(12))
def test_random_shapes_forward_and_adjoint_match_numpy(seed):
    """Forward against numpy; backward as the adjoint of the numpy forward: <A x', g> = <x', grad>."""
    shape, f, up, down, pad, flip, gain = _random_case(seed)
    x = np.random.randn(*shape).astype(np.float32)
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        y = upfirdn2d(xt, f, up=up, down=down, padding=pad, flip_filter=flip, gain=gain)
        g = tf.constant(np.random.randn(*y.shape).astype(np.float32))
        loss = tf.reduce_sum(y * g)
    np.testing.assert_allclose(y.numpy(), numpy_ref.upfirdn2d(x, f, up, down, pad, flip, gain), rtol=1e-4, atol=1e-4)
    grad = tape.gradient(loss, xt).numpy()
    probe = np.random.randn(*shape)
    lhs = np.sum(numpy_ref.upfirdn2d(probe, f, up, down, pad, flip, gain) * g.numpy())
    assert np.sum(probe * grad) == pytest.approx(lhs, rel=1e-4, abs=1e-4)


@pytest.mark.parametrize("taps", [[1, 3, 3, 1], [1, 2, 1], [1, 1]])
def test_resampling_helpers_match_nvidia_padding(taps):
    """upsample2d / downsample2d / filter2d are upfirdn2d with stylegan2-ada's padding rules, written
    out here for a filter of width fw: up 2 pads [(fw + 1) // 2, (fw - 2) // 2] and gains 4, down 2
    pads [(fw - 1) // 2, (fw - 2) // 2], filter2d pads [fw // 2, (fw - 1) // 2]."""
    f = setup_filter(taps)
    fw = len(taps)
    x = np.random.randn(2, 6, 7, 3).astype(np.float32)
    up = ((fw + 1) // 2, (fw - 2) // 2)
    down = ((fw - 1) // 2, (fw - 2) // 2)
    same = (fw // 2, (fw - 1) // 2)
    np.testing.assert_allclose(upsample2d(tf.constant(x), f).numpy(),
                               numpy_ref.upfirdn2d(x, f, (2, 2), (1, 1), up + up, False, 4.0), rtol=1e-5, atol=1e-5)
    xe = x[:, :6, :6]
    np.testing.assert_allclose(downsample2d(tf.constant(xe), f).numpy(),
                               numpy_ref.upfirdn2d(xe, f, (1, 1), (2, 2), down + down), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(filter2d(tf.constant(x), f).numpy(),
                               numpy_ref.upfirdn2d(x, f, (1, 1), (1, 1), same + same), rtol=1e-5, atol=1e-5)
