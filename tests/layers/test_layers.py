"""Layers: numbers against numpy, the paper's invariants, and config round trips."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import layers as L


def _copy_weights(src, dst):
    for a, b in zip(src.weights, dst.weights):
        b.assign(a)


def test_equalized_dense_matches_numpy():
    layer = L.EqualizedDense(6, 5, activation="lrelu", bias_init=0.3, lr_multiplier=0.01)
    layer.bias.assign(np.random.randn(5).astype(np.float32))
    x = np.random.randn(4, 6).astype(np.float32)
    w = layer.weight.numpy() * 0.01 / np.sqrt(6)
    pre = x @ w + layer.bias.numpy() * 0.01
    ref = np.where(pre > 0, pre, 0.2 * pre) * np.sqrt(2)
    np.testing.assert_allclose(layer(x).numpy(), ref, rtol=1e-5, atol=1e-6)
    # Stored weights have std 1/lr_multiplier, so the effective weights have std 1/sqrt(fan_in).
    big = L.EqualizedDense(256, 256, lr_multiplier=0.01)
    assert np.std(big.weight.numpy()) == pytest.approx(100.0, rel=0.05)
    np.testing.assert_allclose(L.EqualizedDense(3, 2, bias_init=1.0).bias.numpy(), 1.0)


def test_equalized_conv_gain_and_clamp():
    layer = L.EqualizedConv2D(3, 4, 3, activation="lrelu", conv_clamp=0.5)
    x = tf.random.normal([2, 8, 8, 3])
    y = layer(x).numpy()
    assert np.abs(y).max() <= 0.5 + 1e-6
    y2 = layer(x, gain=0.25).numpy()
    assert np.abs(y2).max() <= 0.125 + 1e-6  # the clamp scales with the gain
    unclamped = L.EqualizedConv2D(3, 4, 3, activation="linear")
    _copy_weights(layer, unclamped)
    w = layer.weight.numpy() / np.sqrt(27)
    ref = tf.nn.conv2d(x, w, 1, "SAME").numpy()
    np.testing.assert_allclose(unclamped(x).numpy(), ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("up", [1, 2])
def test_demodulation_gives_unit_variance(up):
    """StyleGAN2's assumption: unit-variance i.i.d. input -> unit-variance output, per sample."""
    keras.utils.set_random_seed(0)
    conv = L.ModulatedConv2D(64, 32, w_dim=16, up=up)
    conv.affine.bias.assign(np.random.randn(64).astype(np.float32))  # styles far from 1
    x = tf.random.normal([4, 32, 32, 64])
    # Styles of four magnitudes: without demodulation the output scales differ by orders (the
    # ratio below is 1.3-1.6 over seeds; with one common scale it was 0.09-0.27, a coin toss at 0.2).
    w = tf.random.normal([4, 16]) * tf.constant([[1.0], [3.0], [9.0], [27.0]])
    y = conv(x, w).numpy()
    inner = y[:, 2:-2, 2:-2] if up == 1 else y  # away from the zero padding of the border
    per_sample_var = inner.reshape(4, -1).var(axis=1)
    if up == 1:
        np.testing.assert_allclose(per_sample_var, 1.0, rtol=0.05)
    else:
        # Upsampling spreads each input over 4 pixels with the [1,3,3,1] filter: variance changes,
        # but identically for every sample whatever its style.
        assert per_sample_var.std() / per_sample_var.mean() < 0.05
    no_demod = L.ModulatedConv2D(64, 32, w_dim=16, demodulate=False)
    _copy_weights(conv, no_demod)
    raw = no_demod(x, w).numpy().reshape(4, -1).var(axis=1)
    assert raw.std() / raw.mean() > 1.0  # without demodulation the styles change the scale


@pytest.mark.parametrize("up,demodulate", [(1, True), (2, True), (1, False)])
def test_fused_and_per_sample_agree(up, demodulate):
    conv = L.ModulatedConv2D(8, 6, w_dim=5, up=up, demodulate=demodulate, kernel_size=3)
    x = tf.random.normal([3, 6, 6, 8])
    w = tf.random.normal([3, 5])
    fused = conv(x, w, fused_modconv=True).numpy()
    per_sample = conv(x, w, fused_modconv=False).numpy()
    np.testing.assert_allclose(fused, per_sample, atol=1e-5)


def test_modulated_conv_matches_explicit_per_sample_weights():
    conv = L.ModulatedConv2D(4, 3, w_dim=2)
    x = np.random.randn(2, 5, 5, 4).astype(np.float32)
    w = np.random.randn(2, 2).astype(np.float32)
    styles = conv.affine(w).numpy()
    y = conv(x, w).numpy()
    for n in range(2):
        wn = conv.weight.numpy() * styles[n][None, None, :, None]
        wn = wn / np.sqrt((wn**2).sum(axis=(0, 1, 2), keepdims=True) + 1e-8)
        ref = tf.nn.conv2d(x[n : n + 1], wn, 1, "SAME").numpy()[0]
        np.testing.assert_allclose(y[n], ref, rtol=1e-5, atol=1e-5)


def test_minibatch_std_matches_numpy():
    layer = L.MinibatchStd(group_size=2, num_channels=2)
    x = np.random.randn(6, 3, 4, 8).astype(np.float32)
    y = layer(x).numpy()
    assert y.shape == (6, 3, 4, 10)
    np.testing.assert_array_equal(y[..., :8], x)
    for i in range(6):
        group = [j for j in range(6) if j % 3 == i % 3]  # sample i is in group i % (N / G)
        for f in range(2):
            sl = x[group][..., f * 4 : (f + 1) * 4]
            expected = np.sqrt(sl.var(axis=0) + 1e-8).mean()
            np.testing.assert_allclose(y[i, :, :, 8 + f], expected, rtol=1e-5)
    with pytest.raises(ValueError, match="not divisible by the minibatch-std group size 4"):
        L.MinibatchStd(group_size=4)(tf.zeros([6, 4, 4, 2]))


def test_noise_modes():
    noise = L.NoiseInjection(8)
    x = tf.zeros([2, 8, 8, 3])
    np.testing.assert_array_equal(noise(x).numpy(), 0)  # strength starts at zero
    noise.noise_strength.assign(0.5)
    const = noise(x, noise_mode="const").numpy()
    np.testing.assert_allclose(const[1, :, :, 2], 0.5 * noise.noise_const.numpy(), rtol=1e-6)
    np.testing.assert_array_equal(noise(x, noise_mode="none").numpy(), 0)
    seeded = [noise(x, seed=tf.constant([3, 4])).numpy() for _ in range(2)]
    np.testing.assert_array_equal(seeded[0], seeded[1])
    assert not np.allclose(seeded[0][0], seeded[0][1])  # different noise per sample
    with pytest.raises(ValueError, match="unknown noise_mode 'fixed'"):
        noise(x, noise_mode="fixed")


def test_mapping_truncation_and_w_avg():
    m = L.MappingNetwork(z_dim=8, c_dim=0, w_dim=6, num_ws=5, num_layers=2, w_avg_beta=0.9)
    m.w_avg.assign(np.random.randn(6).astype(np.float32))
    z = tf.random.normal([3, 8])
    ws = m(z).numpy()
    assert ws.shape == (3, 5, 6)
    np.testing.assert_array_equal(ws[:, 0], ws[:, 4])  # broadcast copies
    np.testing.assert_allclose(m(z, truncation_psi=0.0).numpy(), np.broadcast_to(m.w_avg.numpy(), ws.shape), atol=1e-6)
    half = m(z, truncation_psi=0.5, truncation_cutoff=2).numpy()
    np.testing.assert_allclose(half[:, :2], m.w_avg.numpy() + 0.5 * (ws[:, :2] - m.w_avg.numpy()), atol=1e-5)
    np.testing.assert_allclose(half[:, 2:], ws[:, 2:], atol=1e-6)
    old = m.w_avg.numpy()
    moved = m.moved_w_avg(ws[:, 0]).numpy()
    np.testing.assert_allclose(moved, ws[:, 0].mean(0) + 0.9 * (old - ws[:, 0].mean(0)), atol=1e-6)
    np.testing.assert_array_equal(m.w_avg.numpy(), old)  # returned, not assigned


def test_mapping_normalizes_inputs_and_embeds_labels():
    m = L.MappingNetwork(z_dim=4, c_dim=3, w_dim=4, num_ws=None, num_layers=1, lr_multiplier=1.0)
    z = np.random.randn(2, 4).astype(np.float32)
    c = np.eye(3, dtype=np.float32)[[0, 2]]
    np.testing.assert_allclose(m(z, c).numpy(), m(z * 7.0, c).numpy(), rtol=1e-5, atol=1e-6)  # z is normalized
    assert not np.allclose(m(z, c).numpy(), m(z, c[::-1]).numpy())
    x = L.normalize_2nd_moment(tf.constant(z)).numpy()
    np.testing.assert_allclose((x**2).mean(axis=1), 1.0, rtol=1e-5)
    with pytest.raises(ValueError, match=r"label c must have shape \[\?, 3\], got \[2, 2\]"):
        m(z, c[:, :2])
    with pytest.raises(ValueError, match=r"z must have shape \[\?, 4\], got \[2, 5\]"):
        m(np.zeros([2, 5], np.float32), c)


def test_mapping_without_layers_passes_the_normalized_embedding_through():
    """stylegan2-ada's TF discriminator maps labels with the embedding alone (mapping_layers=0)."""
    m = L.MappingNetwork(z_dim=0, c_dim=3, w_dim=5, num_ws=None, num_layers=0, w_avg_beta=None)
    c = np.eye(3, dtype=np.float32)[[0, 2]]
    w, b = m.embed.weight.numpy(), np.random.randn(5).astype(np.float32)
    m.embed.bias.assign(b)
    y = c @ w / np.sqrt(3) + b
    np.testing.assert_allclose(m(None, c).numpy(), y / np.sqrt((y**2).mean(axis=1, keepdims=True) + 1e-8), rtol=1e-5)
    assert not m.fcs
    with pytest.raises(ValueError, match="input width 4 must equal w_dim=5"):
        L.MappingNetwork(z_dim=0, c_dim=3, w_dim=5, num_ws=None, num_layers=0, embed_features=4)


def test_const_channels_set_the_first_block_input():
    """stylegan2-ada's TF fmap_const: the 4x4 constant may be wider or narrower than the 4x4 block."""
    s = L.SynthesisNetwork(w_dim=6, img_resolution=8, img_channels=3, channel_base=32, channel_max=8, const_channels=3)
    b4 = s.blocks[0]
    assert tuple(b4.const.shape) == (4, 4, 3) and tuple(b4.conv1.conv.weight.shape)[2:] == (3, 8)
    assert s(tf.random.normal([2, s.num_ws, 6]), noise_mode="const").shape == (2, 8, 8, 3)
    with pytest.raises(ValueError, match="first block only"):
        L.SynthesisBlock(4, 5, w_dim=6, resolution=8, img_channels=3, is_last=True, const_channels=3)


def _all_layers():
    return [
        L.EqualizedDense(4, 3, activation="relu", use_bias=False, lr_multiplier=0.5),
        L.EqualizedConv2D(3, 4, 3, activation="lrelu", down=2, conv_clamp=8.0),
        L.ModulatedConv2D(4, 5, w_dim=6, up=2, demodulate=True),
        L.NoiseInjection(8),
        L.ToRGB(5, 3, w_dim=6, conv_clamp=4.0),
        L.MinibatchStd(group_size=2, num_channels=1),
        L.MappingNetwork(z_dim=6, c_dim=2, w_dim=6, num_ws=3, num_layers=2, embed_features=5),
        L.SynthesisLayer(4, 5, w_dim=6, resolution=8, up=2, conv_clamp=2.0),
        L.SynthesisBlock(4, 5, w_dim=6, resolution=8, img_channels=3, is_last=True, architecture="resnet"),
        L.SynthesisNetwork(w_dim=6, img_resolution=8, img_channels=3, channel_base=32, channel_max=8, const_channels=3),
        L.DiscriminatorBlock(0, 4, 6, resolution=8, img_channels=3, architecture="skip"),
        L.DiscriminatorEpilogue(6, cmap_dim=4, resolution=4, img_channels=3, architecture="skip", mbstd_group_size=2),
    ]


@pytest.mark.parametrize("layer", _all_layers(), ids=lambda layer: type(layer).__name__)
def test_get_config_round_trip(layer):
    clone = type(layer).from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    assert [tuple(v.shape) for v in clone.weights] == [tuple(v.shape) for v in layer.weights]
    assert layer.__doc__ and "Shapes" in layer.__doc__
