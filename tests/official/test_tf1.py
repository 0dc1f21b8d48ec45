"""StyleGAN2 TF1 pickles: our imported networks compute what TF1's definition computes."""

import numpy as np
import nvidia_ref as ref
import official_pickles as op
import pytest
import tensorflow as tf

from tf_stylegan2 import PRESETS, official
from tf_stylegan2.fileio import UserError
from tf_stylegan2.official import tf1

# Tiny networks: TF1 channels min(fmap_base / 2**(log2(r) - 1), fmap_max) = 32, 32, 16 at 4, 8, 16.
G_KW = dict(resolution=16, num_channels=3, label_size=0, fmap_base=128, fmap_max=32, latent_size=16, dlatent_size=16,
            mapping_layers=2, mapping_fmaps=16)
D_KW = dict(resolution=16, num_channels=3, label_size=0, fmap_base=128, fmap_max=32)


def write(tmp_path, g_kw, d_kw, **kwargs):
    data, variables = op.tf1_pickle(g_kw, d_kw, **kwargs)
    path = tmp_path / "network.pkl"
    path.write_bytes(data)
    return str(path), variables


@pytest.mark.parametrize(
    "g_arch, d_arch, mbstd, mbstd_features",
    [("skip", "resnet", 2, 1), ("resnet", "skip", 4, 2), ("orig", "orig", 0, 1)],  # configs E/F are skip + resnet
)
def test_generator_and_discriminator_match_tf1(tmp_path, g_arch, d_arch, mbstd, mbstd_features):
    g_kw = dict(G_KW, architecture=g_arch)
    d_kw = dict(D_KW, architecture=d_arch, mbstd_group_size=mbstd, mbstd_num_features=mbstd_features)
    path, v = write(tmp_path, g_kw, d_kw)
    nets = official.read(path)
    z = np.random.RandomState(1).randn(4, 16)
    for ours_key, tf1_key in (("G_ema", "Gs"), ("G", "G")):
        G = nets.networks[ours_key].build()
        for psi, cutoff in [(1.0, None), (0.5, None), (0.7, 2)]:
            expected = ref.tf1_generator(v[tf1_key], g_kw, z, psi, cutoff)
            got = G(tf.constant(z, tf.float32), truncation_psi=psi, truncation_cutoff=cutoff, noise_mode="const")
            got = got.numpy().transpose(0, 3, 1, 2)
            assert np.abs(expected).max() < 4  # images of a plausible range, about [-1, 1]
            np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)
    img = np.random.RandomState(2).randn(4, 3, 16, 16)
    D = nets.networks["D"].build()
    expected = ref.tf1_discriminator(v["D"], d_kw, img)
    got = D(tf.constant(img.transpose(0, 2, 3, 1), tf.float32)).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5 * max(1, np.abs(expected).max()), rtol=0)


def test_g_and_gs_are_distinct_networks(tmp_path):
    path, v = write(tmp_path, G_KW, D_KW)
    nets = official.read(path).networks
    assert np.array_equal(nets["G"].tensors["mapping.w_avg"], v["G"]["dlatent_avg"])
    assert np.array_equal(nets["G_ema"].tensors["mapping.w_avg"], v["Gs"]["dlatent_avg"])
    assert not np.array_equal(v["G"]["dlatent_avg"], v["Gs"]["dlatent_avg"])


def test_options_map_to_our_configs(tmp_path):
    g_kw = dict(G_KW, mapping_lrmul=0.02, dlatent_avg_beta=None, truncation_psi=0.5, randomize_noise=True)
    path, _ = write(tmp_path, g_kw, dict(D_KW, mbstd_group_size=4, mbstd_num_features=2))
    nets = official.read(path).networks
    g, d = nets["G_ema"].config, nets["D"].config
    assert (g.img_resolution, g.img_channels, g.z_dim, g.w_dim, g.c_dim) == (16, 3, 16, 16, 0)
    assert (g.channel_base, g.channel_max, g.architecture, g.resample_filter) == (256, 32, "skip", (1.0, 3.0, 3.0, 1.0))
    assert (g.mapping.num_layers, g.mapping.layer_features, g.mapping.lr_multiplier) == (2, 16, 0.02)
    assert g.mapping.w_avg_beta == 1.0  # TF1 without tracking: w_avg stays as stored
    assert (g.num_fp16_res, g.conv_clamp) == (0, None)
    assert (d.channel_base, d.architecture, d.mbstd_group_size, d.mbstd_num_channels) == (256, "resnet", 4, 2)


@pytest.mark.parametrize("fmap_base, preset", [(16 << 10, "config-f"), (8 << 10, "config-e")])
def test_release_channel_rule_matches_the_presets(fmap_base, preset):
    """Configs E and F: TF1's fmap_base is half our channel_base; every resolution agrees."""
    options = dict(fmap_base=fmap_base, fmap_decay=1.0, fmap_min=1, fmap_max=512)
    assert tf1._channels(options, [2**k for k in range(2, 11)], "G") == (PRESETS[preset].channel_base, 512)


@pytest.mark.parametrize(
    "g_change, d_change, message",
    [
        (dict(label_size=3), {}, "conditional TF1 networks"),
        ({}, dict(label_size=3), "conditional TF1 networks"),
        (dict(fmap_decay=0.5), {}, "cannot express"),
        (dict(fmap_min=20), {}, "cannot express"),
        ({}, dict(fmap_base=64, fmap_max=64), "4x4 dense layer has"),  # Dense0 (fmap_base) wider than the 4x4 block
        (dict(conv_clamp=256), {}, "TF1 option 'conv_clamp' is not supported"),
        (dict(normalize_latents=False), {}, "normalize_latents=False"),
        (dict(synthesis_func="G_synthesis_stylegan_revised"), {}, "G_synthesis_stylegan_revised"),
        (dict(resample_kernel=None), {}, "resample_kernel=None"),
        (dict(architecture="unet"), {}, "unknown architecture"),
    ],
)
def test_unsupported_networks_are_refused(tmp_path, g_change, d_change, message):
    path, _ = write(tmp_path, dict(G_KW, **g_change), dict(D_KW, **d_change))
    with pytest.raises(UserError, match=message):
        official.read(path)


@pytest.mark.parametrize("g_func, d_func", [("G_style", "D_stylegan2"), ("G_main", "D_stylegan"), ("G_main", "D_basic")])
def test_stylegan1_and_progressive_networks_are_refused(tmp_path, g_func, d_func):
    path, _ = write(tmp_path, G_KW, D_KW, g_func=g_func, d_func=d_func)
    with pytest.raises(UserError, match="is not supported; only StyleGAN2's"):
        official.read(path)


def test_missing_and_extra_variables_are_refused(tmp_path):
    path, _ = write(tmp_path, G_KW, D_KW)
    data = (tmp_path / "network.pkl").read_bytes()
    (tmp_path / "network.pkl").write_bytes(data.replace(b"ToRGB/mod_bias", b"ToRGB/mod_bia5"))
    with pytest.raises(UserError, match="has no variable 'synthesis/4x4/ToRGB/mod_bias'"):
        official.read(path)
    (tmp_path / "network.pkl").write_bytes(data.replace(b"Dense1/weight", b"Dense7/weight"))
    with pytest.raises(UserError, match="no variable 'mapping/Dense1/weight'"):
        official.read(path)
