"""The compiled CPU kernels against the numpy references and the TF reference ops.

The library is built from source for this session with ``custom_ops.build`` (about 15 s), so CI
checks the C++ on every run.
"""

import numpy as np
import pytest
import tensorflow as tf

import numpy_ref
from custom_ops import bias_act, build, conv2d_resample, loader, setup_filter, upfirdn2d
from test_upfirdn2d import CASES, _filter


@pytest.fixture(scope="module")
def library_path(tmp_path_factory):
    return build.build(str(tmp_path_factory.mktemp("ops") / "_stylegan2_ops.so"), portable=True)


@pytest.fixture(scope="module", autouse=True)
def compiled(library_path):
    # Loaded while a tf.function is traced, as happens when the first op call is in a training step.
    tf.function(lambda: loader.load(library_path) and tf.constant(0))()
    with loader.implementation("custom"):
        yield


@pytest.mark.parametrize("shape,f,up,down,pad,flip,gain", CASES)
def test_upfirdn2d_forward_and_gradient(shape, f, up, down, pad, flip, gain):
    f = _filter(f)
    x = tf.constant(np.random.randn(*shape).astype(np.float32))
    g = tf.constant(np.random.randn(*numpy_ref.upfirdn2d(x.numpy(), f, up, down, pad, flip, gain).shape).astype(np.float32))
    grads = {}
    for impl in ["custom", "ref"]:
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = upfirdn2d(x, f, up=up, down=down, padding=pad, flip_filter=flip, gain=gain, impl=impl)
            loss = tf.reduce_sum(y * g)
        grads[impl] = tape.gradient(loss, x).numpy()
        if impl == "custom":
            np.testing.assert_allclose(y.numpy(), numpy_ref.upfirdn2d(x.numpy(), f, up, down, pad, flip, gain),
                                       rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(grads["custom"], grads["ref"], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("act", ["linear", "relu", "lrelu"])
@pytest.mark.parametrize("clamp", [None, 0.7])
@pytest.mark.parametrize("layout", ["nhwc", "nchw"])
def test_bias_act_forward_and_gradient(act, clamp, layout):
    func, dfunc, alpha, gain = numpy_ref.ACTIVATIONS[act]
    x = np.random.randn(3, 4, 5, 6)
    axis = -1 if layout == "nhwc" else 1
    b = np.random.randn(x.shape[axis])
    pre = x + (b if layout == "nhwc" else b[None, :, None, None])
    ref = func(pre, alpha) * gain
    dref = dfunc(pre, alpha) * gain
    if clamp is not None:
        dref = np.where(np.abs(ref) >= clamp, 0.0, dref)
        ref = np.clip(ref, -clamp, clamp)
    xt, bt = tf.constant(x), tf.constant(b)
    with tf.GradientTape() as tape:
        tape.watch([xt, bt])
        y = bias_act(xt, bt, axis=axis, act=act, clamp=clamp, impl="custom")
    dx, db = tape.gradient(y, [xt, bt])
    np.testing.assert_allclose(y.numpy(), ref, rtol=1e-7, atol=1e-12)
    np.testing.assert_allclose(dx.numpy(), dref, rtol=1e-7, atol=1e-12)
    np.testing.assert_allclose(db.numpy(), dref.sum(axis=tuple(i for i in range(4) if i != axis % 4)), rtol=1e-7)


@pytest.mark.parametrize("dtype,tol", [(tf.float16, 1e-3), (tf.bfloat16, 1e-2), (tf.float32, 1e-6)])
def test_low_precision_matches_reference(dtype, tol):
    x = tf.cast(tf.random.normal([2, 6, 6, 8]), dtype)
    b = tf.cast(tf.random.normal([8]), dtype)
    f = setup_filter([1, 3, 3, 1])
    for fn in [lambda impl: bias_act(x, b, act="lrelu", clamp=2.0, impl=impl),
               lambda impl: upfirdn2d(x, f, up=2, padding=[2, 1, 2, 1], gain=4, impl=impl)]:
        a, r = fn("custom"), fn("ref")
        assert a.dtype == dtype
        np.testing.assert_allclose(tf.cast(a, tf.float32).numpy(), tf.cast(r, tf.float32).numpy(), rtol=tol, atol=tol)


def test_second_order_gradient_matches_reference():
    """The R1 term (gradient of a gradient norm) through both kernels equals the reference."""
    f = setup_filter([1, 3, 3, 1])
    x = tf.constant(np.random.randn(2, 8, 8, 3))
    w0 = tf.constant(np.random.randn(3, 3, 3, 4) * 0.3)
    w1 = tf.constant(np.random.randn(3, 3, 4, 2) * 0.3)
    b = tf.constant(np.random.randn(4) * 0.1)

    def r1_grad(impl):
        with loader.implementation(impl):
            with tf.GradientTape() as outer:
                outer.watch([w0, b])
                with tf.GradientTape() as inner:
                    inner.watch(x)
                    h = bias_act(conv2d_resample(x, w0, f, down=2, padding=1), b, act="lrelu", clamp=1.5)
                    h = conv2d_resample(h, w1, f, up=2, padding=1, flip_weight=False)
                    out = tf.reduce_sum(tf.sin(h))
                penalty = tf.reduce_sum(tf.square(inner.gradient(out, x)))
            return [g.numpy() for g in outer.gradient(penalty, [w0, b])]

    for custom, ref in zip(r1_grad("custom"), r1_grad("ref")):
        np.testing.assert_allclose(custom, ref, rtol=1e-9, atol=1e-12)


def test_refuses_a_library_of_another_tensorflow_version(library_path, monkeypatch):
    monkeypatch.setattr(loader, "_library", None)  # as in a fresh process
    monkeypatch.setattr(tf, "__version__", "2.0.0")
    with pytest.raises(RuntimeError, match="built for TensorFlow 2.21.* rebuild"):
        loader.load(library_path)


def test_one_library_per_process(library_path, tmp_path):
    other = tmp_path / "other.so"
    other.write_bytes(open(library_path, "rb").read())
    with pytest.raises(RuntimeError, match="already loaded from"):
        loader.load(str(other))


def test_selection_rules():
    assert loader.use_custom("custom") and not loader.use_custom("ref")
    with loader.implementation("ref"):
        assert not loader.use_custom()
    with loader.implementation("auto"):
        assert loader.use_custom()  # library loaded, CPU only, eager
        seen = []
        tf.function(lambda: seen.append(loader.use_custom()) or tf.constant(0), jit_compile=True)()
        assert seen == [False]  # XLA cannot compile custom ops
    with pytest.raises(ValueError, match="unknown ops implementation"):
        loader.use_custom("fast")
    # swish is not compiled: it takes the reference path even when custom is requested
    y = bias_act(tf.constant([1.0, -1.0]), act="swish", impl="custom")
    np.testing.assert_allclose(y.numpy(), numpy_ref.ACTIVATIONS["swish"][0](np.array([1.0, -1.0]), 0) * np.sqrt(2),
                               rtol=1e-6)


def test_networks_compute_the_same_with_compiled_kernels():
    """A generator and discriminator step (forward, gradients) with either implementation."""
    from tf_stylegan2 import Discriminator, DiscriminatorConfig, Generator, GeneratorConfig, MappingConfig

    kw = dict(img_resolution=16, channel_base=128, channel_max=16, conv_clamp=8.0, architecture="resnet")
    G = Generator(GeneratorConfig(z_dim=8, w_dim=8, mapping=MappingConfig(num_layers=2), **kw))
    D = Discriminator(DiscriminatorConfig(mbstd_group_size=2, **kw))
    z = tf.random.normal([4, 8])
    results = {}
    for impl in ["custom", "ref"]:
        with loader.implementation(impl):
            with tf.GradientTape() as tape:
                img = G(z, noise_mode="const")
                loss = tf.reduce_sum(tf.nn.softplus(D(img)))
            grads = tape.gradient(loss, G.trainable_variables + D.trainable_variables)
        results[impl] = [img.numpy(), loss.numpy()] + [g.numpy() for g in grads]
    for a, b in zip(results["custom"], results["ref"]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_exports_contain_stock_ops_only(tmp_path):
    """Even with the compiled kernels forced on, a SavedModel for TF Serving holds only stock ops."""
    from tensorflow.core.protobuf import saved_model_pb2

    from tf_stylegan2 import Generator, GeneratorConfig, MappingConfig
    from tf_stylegan2.export.savedmodel import export_savedmodel

    G = Generator(GeneratorConfig(img_resolution=8, z_dim=4, w_dim=4, channel_base=32, channel_max=8,
                                  mapping=MappingConfig(num_layers=1)))
    assert loader.use_custom()  # the module's scope forces the compiled kernels
    path = export_savedmodel(G, str(tmp_path / "serving"))
    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString(open(f"{path}/saved_model.pb", "rb").read())
    graph = proto.meta_graphs[0].graph_def
    ops = {n.op for n in graph.node} | {n.op for f in graph.library.function for n in f.node_def}
    assert "DepthwiseConv2dNative" in ops  # the reference upfirdn2d is there
    assert not [op for op in ops if op.startswith("StyleGAN2")]
