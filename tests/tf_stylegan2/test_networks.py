"""Generator / Discriminator: shapes, NVIDIA's parameter counts, saving, mixed precision, bad input."""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from layers.modulated_conv import ModulatedConv2D
from tf_stylegan2 import Discriminator, DiscriminatorConfig, Generator, GeneratorConfig, MappingConfig, resolve

GOLDENS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "goldens")
SMALL = dict(channel_base=128, channel_max=16)
SMALL_MAPPING = MappingConfig(num_layers=2)


def small_g(res=16, **kw):
    kw = {**SMALL, "z_dim": 8, "w_dim": 8, "mapping": SMALL_MAPPING, **kw}
    return GeneratorConfig(img_resolution=res, **kw)


def small_d(res=16, **kw):
    return DiscriminatorConfig(img_resolution=res, **{**SMALL, "mbstd_group_size": 2, **kw})


def trainable_count(model):
    return sum(int(np.prod(v.shape)) for v in model.trainable_weights)


@pytest.mark.parametrize("res", [4, 8, 16, 32, 64, 128, 256, 512, 1024])
@pytest.mark.parametrize("arch", ["orig", "skip", "resnet"])
def test_shapes_for_every_resolution(res, arch):
    g = Generator(GeneratorConfig(img_resolution=res, z_dim=4, w_dim=4, channel_base=res * 2, channel_max=2,
                                  architecture=arch, mapping=MappingConfig(num_layers=1)))
    d = Discriminator(DiscriminatorConfig(img_resolution=res, channel_base=res * 2, channel_max=2, architecture=arch))
    assert g.num_ws == 2 * int(np.log2(res)) - 2
    img = g(tf.random.normal([2, 4]), noise_mode="const")
    assert img.shape == (2, res, res, 3) and img.dtype == tf.float32
    logits = d(img)
    assert logits.shape == (2, 1) and logits.dtype == tf.float32
    assert np.isfinite(img.numpy()).all() and np.isfinite(logits.numpy()).all()


@pytest.mark.parametrize("arch", ["orig", "skip", "resnet"])
def test_graph_mode_matches_eager(arch):
    """Training and export run inside tf.function; the traced models compute what eager ones do."""
    g = Generator(small_g(architecture=arch, c_dim=2))
    d = Discriminator(small_d(architecture=arch, c_dim=2))
    _perturb(g)
    _perturb(d)
    z, c = tf.random.normal([4, 8]), tf.one_hot([0, 1, 1, 0], 2)
    run_g = tf.function(lambda z, c: g(z, c, truncation_psi=0.6, truncation_cutoff=3, noise_mode="const"))
    run_d = tf.function(lambda img, c: d(img, c))
    img = g(z, c, truncation_psi=0.6, truncation_cutoff=3, noise_mode="const")
    # Grappler fuses and reorders float32 ops: 2e-6 differences on values up to 4 were measured.
    np.testing.assert_allclose(run_g(z, c).numpy(), img.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(run_d(img, c).numpy(), d(img, c).numpy(), rtol=1e-5, atol=1e-5)


def test_config_f_parameter_counts_match_nvidia():
    """Config F at 1024x1024, trainable parameters only (buffers such as noise_const and w_avg excluded).

    Expected numbers: NVIDIA stylegan2-ada-pytorch ``training/networks.py`` (``Generator``,
    ``Discriminator``) built with channel_base=32768, channel_max=512, z=w=512, 8 mapping layers,
    no labels, summing ``p.numel()`` over ``parameters()`` (the Parameters column of the table
    that ``torch_utils/misc.py`` ``print_module_summary`` prints when training starts):
    G 30,370,060 = mapping 2,101,248 + synthesis 28,268,812; D 29,012,513.
    """
    cfg = resolve("config-f", 1024)
    g, d = Generator(cfg.G), Discriminator(cfg.D)
    assert trainable_count(g.mapping) == 2_101_248
    assert trainable_count(g.synthesis) == 28_268_812
    assert trainable_count(g) == 30_370_060
    assert trainable_count(d) == 29_012_513
    assert g.num_ws == 18


def test_truncation_psi_zero_returns_w_avg():
    g = Generator(small_g())
    g.mapping.w_avg.assign(np.random.randn(8).astype(np.float32))
    ws = g.mapping(tf.random.normal([5, 8]), truncation_psi=0.0).numpy()
    np.testing.assert_allclose(ws, np.broadcast_to(g.mapping.w_avg.numpy(), ws.shape), atol=1e-6)
    a = g(tf.random.normal([2, 8]), truncation_psi=0.0, noise_mode="const").numpy()
    np.testing.assert_allclose(a[0], a[1], atol=1e-5)  # every z maps to the same image


@pytest.mark.parametrize("arch", ["skip", "resnet"])
def test_fused_and_per_sample_generator_agree(arch):
    g = Generator(small_g(architecture=arch))
    z = tf.random.normal([3, 8])
    a = g(z, noise_mode="const", fused_modconv=True).numpy()
    b = g(z, noise_mode="const", fused_modconv=False).numpy()
    np.testing.assert_allclose(a, b, atol=1e-5)


def _perturb(model):
    """Random non-zero values for parameters that initialise to zero (biases, noise strengths)."""
    for v in model.weights:
        if not np.any(v.numpy()):
            v.assign(0.3 * np.asarray(np.random.randn(*v.shape), np.float32))


@pytest.mark.parametrize("c_dim", [0, 3])
def test_keras_save_load_round_trip(tmp_path, c_dim):
    g = Generator(small_g(c_dim=c_dim, architecture="resnet"), dtype="mixed_bfloat16")
    d = Discriminator(small_d(c_dim=c_dim, architecture="skip"))
    _perturb(g)
    _perturb(d)
    z = tf.random.normal([4, 8])
    c = tf.one_hot([0, 1, 2, 0], 3) if c_dim else None
    img = g(z, c, noise_mode="const", truncation_psi=0.7)
    logits = d(img, c)
    g.save(tmp_path / "G.keras")
    d.save(tmp_path / "D.keras")
    g2 = keras.models.load_model(tmp_path / "G.keras")
    d2 = keras.models.load_model(tmp_path / "D.keras")
    assert isinstance(g2, Generator) and g2.config == g.config and g2.dtype_policy.name == "mixed_bfloat16"
    assert isinstance(d2, Discriminator) and d2.config == d.config
    np.testing.assert_array_equal(g2(z, c, noise_mode="const", truncation_psi=0.7).numpy(), img.numpy())
    np.testing.assert_array_equal(d2(img, c).numpy(), logits.numpy())
    np.testing.assert_array_equal(g2.mapping.w_avg.numpy(), g.mapping.w_avg.numpy())


def test_keras_files_saved_by_earlier_versions_load():
    """goldens/: a G and a D saved by an earlier version of this code (make_keras_goldens.py says
    which). Keras 3 files name weights by the models' attribute paths: this fails when a rename or
    a new layer moves one. (The ops implementation and its build change the last float bits.)"""
    outputs = np.load(os.path.join(GOLDENS, "outputs.npz"))
    G = keras.models.load_model(os.path.join(GOLDENS, "G.keras"))
    D = keras.models.load_model(os.path.join(GOLDENS, "D.keras"))
    z, c = tf.constant(outputs["z"]), tf.constant(outputs["c"])
    img = G(z, c, truncation_psi=0.5, noise_mode="const").numpy()
    np.testing.assert_allclose(img, outputs["img"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(D(tf.constant(outputs["img"]), c).numpy(), outputs["logits"], rtol=1e-5, atol=1e-5)


def _block_dtypes(model, blocks):
    return {b.name: b.compute_dtype for b in blocks}


@pytest.mark.parametrize("policy,tol", [("mixed_bfloat16", 0.05), ("mixed_float16", 0.005)])
def test_mixed_precision_blocks_finite_and_close_to_fp32(policy, tol):
    """The num_fp16_res highest resolutions compute in low precision; results stay finite and close.

    Tolerance: max |diff| relative to the fp32 output's max |value|. Measured over three seeds:
    bfloat16 (8 mantissa bits) up to 0.012 on images and 0.024 on logits; float16 (11 bits) up to
    0.0017. The bounds leave about 2x (bfloat16) and 3x (float16) headroom.
    """
    cfg_g = small_g(32, num_fp16_res=2, conv_clamp=256)
    cfg_d = small_d(32, num_fp16_res=2, conv_clamp=256)
    g32, d32 = Generator(cfg_g), Discriminator(cfg_d)
    g16, d16 = Generator(cfg_g, dtype=policy), Discriminator(cfg_d, dtype=policy)
    low = policy.split("_")[1]
    assert _block_dtypes(g16, g16.synthesis.blocks) == {"b4": "float32", "b8": "float32", "b16": low, "b32": low}
    assert _block_dtypes(d16, d16.blocks) == {"b32": low, "b16": low, "b8": "float32"}
    assert d16.epilogue.compute_dtype == "float32" and g16.mapping.compute_dtype == "float32"
    _perturb(g32)
    _perturb(d32)
    g16.set_weights(g32.get_weights())
    d16.set_weights(d32.get_weights())
    z = tf.random.normal([4, 8])
    a, b = g32(z, noise_mode="const").numpy(), g16(z, noise_mode="const").numpy()
    assert np.isfinite(b).all()
    assert np.abs(a - b).max() <= tol * np.abs(a).max()
    la, lb = d32(tf.constant(a)).numpy(), d16(tf.constant(a)).numpy()
    assert np.isfinite(lb).all()
    assert np.abs(la - lb).max() <= tol * max(np.abs(la).max(), 1.0)


def test_float16_prenormalization_keeps_large_styles_exact():
    """Huge styles overflow float16 without NVIDIA's pre-normalization (modulated_conv2d in
    stylegan2-ada-pytorch training/networks.py). The clamp keeps such outputs finite, but wrong:
    without it the float16 image differs from the float32 one by ~500 (measured, seeds 0-2).
    Tolerance: max |diff| <= 0.005 max |float32 image|; measured up to 0.0013 over three seeds."""
    cfg = small_g(16, num_fp16_res=2, conv_clamp=256)
    g16 = Generator(cfg, dtype="mixed_float16")
    g32 = Generator(cfg)
    g32.set_weights(g16.get_weights())
    for g in (g16, g32):
        for block in g.synthesis.blocks:
            block.conv1.conv.affine.bias.assign(np.full(block.conv1.in_channels, 3e4, np.float32))
    z = tf.random.normal([2, 8])
    a, b = g32(z, noise_mode="const").numpy(), g16(z, noise_mode="const").numpy()
    assert np.abs(a - b).max() <= 0.005 * np.abs(a).max()


def test_presets_match_nvidia_tables():
    f = resolve("config-f", 1024)
    assert (f.G.channel_base, f.G.num_fp16_res, f.G.conv_clamp, f.train.r1_gamma) == (32768, 0, None, 10.0)
    assert (f.G.architecture, f.D.architecture, f.D.mbstd_group_size, f.train.batch_size) == ("skip", "resnet", 4, 32)
    e = resolve("config-e", 1024)
    assert (e.G.channel_base, e.train.r1_gamma) == (16384, 100.0)
    p256 = resolve("paper256", 256)
    assert (p256.train.batch_size, p256.D.mbstd_group_size, p256.G.channel_base) == (64, 8, 16384)
    assert (p256.train.g_lr, p256.train.r1_gamma, p256.train.ema_kimg) == (0.0025, 1.0, 20.0)
    assert (p256.G.num_fp16_res, p256.G.conv_clamp, p256.G.mapping.num_layers) == (4, 256, 8)
    p512, p1024 = resolve("paper512", 512), resolve("paper1024", 1024)
    assert (p512.train.r1_gamma, p512.G.channel_base, p1024.train.r1_gamma, p1024.train.batch_size) == (0.5, 32768, 2.0, 32)
    cifar = resolve("cifar", 32)
    assert (cifar.D.architecture, cifar.train.pl_weight, cifar.train.style_mixing_prob) == ("orig", 0.0, 0.0)
    assert (cifar.G.mapping.num_layers, cifar.train.ema_kimg, cifar.train.ema_rampup, cifar.D.mbstd_group_size) == (
        2, 500.0, 0.05, 32)
    auto = resolve("auto", 256, num_replicas=1)
    assert (auto.train.batch_size, auto.D.mbstd_group_size, auto.G.channel_base) == (16, 4, 16384)
    assert auto.train.r1_gamma == pytest.approx(0.0002 * 256**2 / 16)
    assert auto.train.ema_kimg == pytest.approx(16 * 10 / 32)
    for p in [f, cifar, auto]:
        assert p.train.betas == (0.0, 0.99) and p.train.epsilon == 1e-8
        assert (p.train.g_reg_interval, p.train.d_reg_interval, p.train.pl_decay) == (4, 16, 0.01)
    for p in [f, cifar, auto]:  # through JSON, as training_options.json and .keras files hold them
        assert type(p).from_dict(json.loads(json.dumps(p.to_dict()))) == p


@pytest.mark.parametrize(
    "build,message",
    [
        (lambda: Generator(small_g(48)), "resolution must be a power of two >= 4, got 48"),
        (lambda: Generator(small_g(2)), "resolution must be a power of two >= 4, got 2"),
        (lambda: Discriminator(small_d(100)), "resolution must be a power of two >= 4, got 100"),
        (lambda: Generator(small_g(architecture="unet")), "unknown architecture 'unet'"),
        (lambda: Discriminator(small_d(architecture="dense")), "unknown architecture 'dense'"),
        (lambda: resolve("config-z", 256), "unknown preset 'config-z'"),
        (lambda: Generator(small_g(activation="gelu")), "unknown activation 'gelu'"),
        (lambda: GeneratorConfig.from_dict({"img_resolution": 8, "channels": 3}), "unknown fields"),
        (lambda: ModulatedConv2D(4, 4, 8, up=3), "up must be 1 or 2"),
    ],
)
def test_bad_configuration_is_a_clear_error(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_bad_inputs_are_clear_errors():
    g = Generator(small_g(c_dim=2))
    d = Discriminator(small_d())
    with pytest.raises(ValueError, match=r"z must have shape \[\?, 8\], got \[2, 7\]"):
        g(tf.zeros([2, 7]), tf.zeros([2, 2]))
    with pytest.raises(ValueError, match=r"labels c of shape \[batch, 2\] are required"):
        g(tf.zeros([2, 8]))
    with pytest.raises(ValueError, match=r"labels must have shape \[2, 2\], got \[3, 2\]"):
        g(tf.zeros([2, 8]), tf.zeros([3, 2]))
    with pytest.raises(ValueError, match=r"unconditional \(c_dim=0\) but got labels"):
        d(tf.zeros([2, 16, 16, 3]), tf.zeros([2, 4]))
    with pytest.raises(ValueError, match=r"images must have shape \[batch, 16, 16, 3\], got \[2, 32, 32, 3\]"):
        d(tf.zeros([2, 32, 32, 3]))
    with pytest.raises(ValueError, match="not divisible by the minibatch-std group size 2"):
        d(tf.zeros([3, 16, 16, 3]))
