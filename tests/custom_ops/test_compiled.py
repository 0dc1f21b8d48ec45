"""The compiled CPU kernels against the numpy references and the TF reference ops.

The library is built from source for this session with ``custom_ops.build`` (the CPU build; the
CUDA build is compiled and loaded in test_cuda_build.py), so CI checks the C++ on every run.
"""

import warnings

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


@pytest.mark.parametrize("act", sorted(numpy_ref.ACTIVATIONS))
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
    assert any(op.type == "StyleGAN2BiasActGrad" for op in _ops_of(lambda: tf.gradients(
        bias_act(xt, bt, axis=axis, act=act, clamp=clamp, impl="custom"), xt)))
    np.testing.assert_allclose(y.numpy(), ref, rtol=1e-7, atol=1e-12)
    # Derivatives read from the output y: one rounding of y away from the numpy derivative.
    np.testing.assert_allclose(dx.numpy(), dref, rtol=1e-7, atol=1e-12)
    np.testing.assert_allclose(db.numpy(), dref.sum(axis=tuple(i for i in range(4) if i != axis % 4)), rtol=1e-7)


def _ops_of(fn):
    """The ops of ``fn`` traced into a graph."""
    graph = tf.function(fn).get_concrete_function().graph
    return graph.get_operations()


@pytest.mark.parametrize("act", sorted(numpy_ref.ACTIVATIONS))
@pytest.mark.parametrize("clamp", [None, 1.5])
def test_bias_act_second_order_matches_reference(act, clamp):
    """A GradientTape of a GradientTape through the kernels (grad modes 1 and 2) equals the same
    through the reference ops, for the gradients with respect to x, b and the upstream weights."""
    x = tf.constant(np.random.randn(2, 3, 4, 5))
    b = tf.constant(np.random.randn(5) * 0.3)
    w = tf.constant(np.random.randn(2, 3, 4, 5))

    def second_order(impl):
        with tf.GradientTape() as outer:
            outer.watch([x, b, w])
            with tf.GradientTape() as inner:
                inner.watch([x, b])
                y = bias_act(x, b, act=act, clamp=clamp, impl=impl)
                out = tf.reduce_sum(tf.sin(y) * w)
            dx, db = inner.gradient(out, [x, b])
            penalty = tf.reduce_sum(tf.square(dx)) + tf.reduce_sum(db * b)
        return [g.numpy() for g in outer.gradient(penalty, [x, b, w])]

    for custom, ref in zip(second_order("custom"), second_order("ref")):
        np.testing.assert_allclose(custom, ref, rtol=1e-9, atol=1e-12)


def test_bias_act_third_order_is_refused_with_a_clear_error():
    x = tf.constant(np.random.randn(4, 3))
    with tf.GradientTape() as t3:
        t3.watch(x)
        with tf.GradientTape() as t2:
            t2.watch(x)
            with tf.GradientTape() as t1:
                t1.watch(x)
                y = tf.reduce_sum(bias_act(x, act="tanh", impl="custom"))
            g1 = tf.reduce_sum(t1.gradient(y, x))
        g2 = tf.reduce_sum(t2.gradient(g1, x))
    with pytest.raises(NotImplementedError, match="second-order.*impl='ref'"):
        t3.gradient(g2, x)


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
    with pytest.raises(RuntimeError, match="stale: it was built for TensorFlow 2.21.* `python -m custom_ops.build`"):
        loader.load(library_path)


def test_refuses_a_library_built_from_other_sources(library_path, monkeypatch):
    monkeypatch.setattr(loader, "_library", None)
    monkeypatch.setattr(build, "sources_digest", lambda root=build.KERNELS: "0123456789abcdef")
    with pytest.raises(RuntimeError, match="stale: it was built from other kernel sources"):
        loader.load(library_path)
    # A library from before the build record (it reported the TensorFlow version alone) is stale too.
    assert "built for TensorFlow unknown" in loader.stale_reason(loader.parse_info(tf.__version__))


def test_library_reports_its_build():
    info = loader.build_info()
    assert info["tensorflow"] == tf.__version__ and info["sources"] == build.sources_digest()
    assert info["cuda"] == "0" and not loader.has_gpu_kernels()
    assert loader.library().style_gan2_cuda_check().numpy().decode() == "the library was built without CUDA"


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
        assert loader.use_custom() == loader.CPU_AUTO  # CPU only: as measured in docs/PERFORMANCE.md
        seen = []
        tf.function(lambda: seen.append(loader.use_custom()) or tf.constant(0), jit_compile=True)()
        assert seen == [False]  # XLA cannot compile custom ops
    with pytest.raises(RuntimeError, match="ops=cuda needs a GPU"):
        loader.use_custom("cuda")
    with pytest.raises(ValueError, match="unknown ops implementation"):
        loader.use_custom("fast")


@pytest.fixture
def fresh_warnings(monkeypatch):
    monkeypatch.setattr(loader, "_warned", set())


def test_a_gpu_without_gpu_kernels_gets_one_warning_and_the_reference_ops(monkeypatch, fresh_warnings):
    """As on a GPU machine with a CPU-only library: ``auto`` warns once, naming the fix, and runs
    the reference ops; ``custom`` and ``cuda`` refuse."""
    monkeypatch.setattr(loader, "gpu_visible", lambda: True)
    monkeypatch.setattr(loader, "_gpu_checked", False)
    with pytest.warns(UserWarning, match="has no GPU kernels.*python -m custom_ops.build --cuda") as record:
        for _ in range(3):
            assert not loader.use_custom("auto")
        y = upfirdn2d(tf.ones([1, 4, 4, 1]), setup_filter([1, 1]), impl="auto")
    assert len(record) == 1
    assert not [op for op in _ops_of(lambda: upfirdn2d(tf.ones([1, 4, 4, 1]), None, impl="auto"))
                if op.type.startswith("StyleGAN2")]
    np.testing.assert_allclose(y.numpy()[0, 1:, 1:, 0], 1.0)
    for impl in ("custom", "cuda"):
        with pytest.raises(RuntimeError, match="unusable: .*has no GPU kernels"):
            loader.use_custom(impl)


def test_no_library_is_silent_on_a_cpu_and_one_warning_on_a_gpu(monkeypatch, fresh_warnings):
    """As in a fresh clone: no library anywhere. On a CPU the reference ops run quietly; where TF
    sees a GPU, one warning says how to build the GPU kernels."""
    monkeypatch.setattr(loader, "_library", None)
    monkeypatch.setattr(loader, "_searched", False)
    monkeypatch.setattr(loader, "candidate_paths", lambda: [])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not loader.use_custom("auto")
    monkeypatch.setattr(loader, "gpu_visible", lambda: True)
    with pytest.warns(UserWarning, match="no compiled library found .*python -m custom_ops.build --cuda") as record:
        assert not loader.use_custom("auto") and not loader.use_custom("auto")
    assert len(record) == 1
    with pytest.raises(RuntimeError, match="unusable: no compiled library found"):
        loader.use_custom("custom")


def test_unsupported_dtype_takes_the_reference_path_with_one_warning(fresh_warnings):
    x = tf.constant([[1, -2, 3]], tf.int32)
    with pytest.warns(UserWarning, match="compiled bias_act has no int32 kernel; using the reference op") as record:
        y = bias_act(x, tf.constant([1, 1, 1], tf.int32), impl="custom")
        bias_act(x, impl="custom")
    assert len(record) == 1
    np.testing.assert_array_equal(y.numpy(), [[2, -1, 4]])


def test_calls_beyond_int32_indexing_take_the_reference_path(fresh_warnings):
    """The kernels index with int32 (upfirdn2d_check in cuda/upfirdn2d.h); larger calls warn once
    and run the reference op, never a wrapped-around index."""
    from custom_ops.upfirdn2d import _fits_kernel

    x = tf.zeros([1, 4, 4, 1])
    huge = (2**31 - 3, -(2**31 - 3), 0, 0)  # pads then crops back: a small output, a huge span
    with pytest.warns(UserWarning, match="too large for the kernels' int32 indexing; using the reference op"):
        assert not _fits_kernel(x, np.ones([1, 1], np.float32), (1, 1), (1, 1), huge)
    assert _fits_kernel(x, np.ones([3, 3], np.float32), (2, 2), (1, 1), (1, 1, 1, 1))


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
