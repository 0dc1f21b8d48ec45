"""stylegan2-ada-pytorch pickles: our imported networks compute what ada's definition computes."""

import os

import numpy as np
import nvidia_ref as ref
import official_pickles as op
import pytest
import tensorflow as tf

from tf_stylegan2 import official
from tf_stylegan2.fileio import UserError


def kwargs(res=16, g_arch="skip", d_arch="resnet", c_dim=0, clamp=None, mbstd=2, cmap_dim=None, mbstd_channels=1):
    g = dict(z_dim=16, c_dim=c_dim, w_dim=16, img_resolution=res, img_channels=3, mapping_kwargs=dict(num_layers=2),
             synthesis_kwargs=dict(channel_base=256, channel_max=32, architecture=g_arch, conv_clamp=clamp, num_fp16_res=2))
    d = dict(c_dim=c_dim, img_resolution=res, img_channels=3, architecture=d_arch, channel_base=256, channel_max=32,
             conv_clamp=clamp, num_fp16_res=2, cmap_dim=cmap_dim, block_kwargs=dict(freeze_layers=0),
             mapping_kwargs=dict(num_layers=2), epilogue_kwargs=dict(mbstd_group_size=mbstd, mbstd_num_channels=mbstd_channels))
    return g, d


def write(tmp_path, g, d, **kw):
    data, sds = op.ada_pickle(g, d, **kw)
    path = tmp_path / "network-snapshot.pkl"
    path.write_bytes(data)
    return str(path), sds


@pytest.mark.parametrize(
    "options",
    [
        dict(),  # the stylegan2-ada default: skip G, resnet D
        dict(g_arch="resnet", d_arch="skip", c_dim=3, mbstd=4, cmap_dim=8, mbstd_channels=2),  # conditional, projection D
        dict(res=8, g_arch="orig", d_arch="orig", mbstd=None),  # mbstd over the whole batch
        dict(res=8, mbstd_channels=0),  # no minibatch-std layer
        dict(c_dim=2, clamp=0.5),  # clamping active at every layer
    ],
)
def test_generator_and_discriminator_match_ada(tmp_path, options):
    g_kw, d_kw = kwargs(**options)
    path, sds = write(tmp_path, g_kw, d_kw)
    nets = official.read(path)
    rng = np.random.RandomState(1)
    res, c_dim = g_kw["img_resolution"], g_kw["c_dim"]
    z = rng.randn(4, 16)
    c = np.eye(max(c_dim, 2))[[0, 1, 1, 0]][:, :c_dim]
    labels = tf.constant(c, tf.float32) if c_dim else None
    for key in ("G_ema", "G"):
        G = nets.networks[key].build()
        for psi, cutoff in [(1.0, None), (0.5, None), (0.7, 2)]:
            expected = ref.ada_generator(sds[key], g_kw, z, c, psi, cutoff)
            got = G(tf.constant(z, tf.float32), labels, truncation_psi=psi, truncation_cutoff=cutoff, noise_mode="const")
            assert np.abs(expected).max() < 4  # images of a plausible range, about [-1, 1]
            np.testing.assert_allclose(got.numpy().transpose(0, 3, 1, 2), expected, atol=1e-4, rtol=0)
    img = rng.randn(4, 3, res, res)
    expected = ref.ada_discriminator(sds["D"], d_kw, img, c)
    got = nets.networks["D"].build()(tf.constant(img.transpose(0, 2, 3, 1), tf.float32), labels).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5 * max(1, np.abs(expected).max()), rtol=0)


def test_init_kwargs_map_to_our_configs(tmp_path):
    g_kw, d_kw = kwargs(c_dim=3, clamp=256, cmap_dim=8)
    g_kw["mapping_kwargs"].update(lr_multiplier=0.02, w_avg_beta=0.99, embed_features=12, layer_features=20)
    d_kw["mapping_kwargs"].update(embed_features=6, layer_features=10)
    d_kw["epilogue_kwargs"].update(mbstd_num_channels=2)  # (also exercised numerically above)
    path, _ = write(tmp_path, g_kw, d_kw)
    nets = official.read(path).networks
    g, d = nets["G_ema"].config, nets["D"].config
    assert (g.img_resolution, g.z_dim, g.w_dim, g.c_dim, g.channel_base, g.channel_max) == (16, 16, 16, 3, 256, 32)
    assert (g.architecture, g.num_fp16_res, g.conv_clamp, g.use_noise, g.activation) == ("skip", 2, 256, True, "lrelu")
    m = g.mapping
    assert (m.num_layers, m.lr_multiplier, m.w_avg_beta, m.embed_features, m.layer_features) == (2, 0.02, 0.99, 12, 20)
    assert (d.c_dim, d.cmap_dim, d.conv_clamp, d.mbstd_group_size, d.mbstd_num_channels) == (3, 8, 256, 2, 2)
    assert (d.mapping.embed_features, d.mapping.layer_features, d.mapping.w_avg_beta) == (6, 10, None)
    # Everything was consumed: building succeeds with every weight set from the pickle.
    D = nets["D"].build()
    assert np.array_equal(D.b4.out.weight.numpy(), nets["D"].tensors["b4.out.weight"].T)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda g, d: g["synthesis_kwargs"].update(kernel_size=5), "kernel_size=5 is not supported"),
        (lambda g, d: g["synthesis_kwargs"].update(magnitude_ema_beta=0.9), "option 'magnitude_ema_beta' is not supported"),
        (lambda g, d: d["epilogue_kwargs"].update(activation="relu"), "different block .* and epilogue"),
        (lambda g, d: g.pop("w_dim"), "lacks 'w_dim'"),
    ],
)
def test_unsupported_options_are_refused(tmp_path, change, message):
    g_kw, d_kw = kwargs()
    change(g_kw, d_kw)
    plain_g, plain_d = kwargs()  # the weights are those of the plain networks; only the recorded options differ
    rng = np.random.RandomState(0)
    G = op.module_tree("Generator", op.ada_generator_state(plain_g, rng), g_kw)
    D = op.module_tree("Discriminator", op.ada_discriminator_state(plain_d, rng), d_kw)
    path = tmp_path / "x.pkl"
    path.write_bytes(op.dumps({"G": G, "D": D, "G_ema": G}, 4))
    with pytest.raises(UserError, match=message):
        official.read(str(path))


def test_stylegan3_is_refused(tmp_path):
    g, d = kwargs()
    path, _ = write(tmp_path, g, d, source="class SynthesisInput(torch.nn.Module):\n    pass\n")
    with pytest.raises(UserError, match="StyleGAN3 network; only StyleGAN2"):
        official.read(path)


def test_weights_that_do_not_fit_the_options_are_refused(tmp_path):
    g_kw, d_kw = kwargs()
    rng = np.random.RandomState(0)
    sd = op.ada_generator_state(g_kw, rng)
    cases = [
        ({**sd, "synthesis.b8.conv0.weight": sd["synthesis.b8.conv0.weight"][:, :8]}, "'synthesis.b8.conv0.weight' has shape"),
        ({k: v for k, v in sd.items() if k != "mapping.fc1.bias"}, "no weight 'mapping.fc1.bias'"),
        ({**sd, "synthesis.b8.extra.weight": sd["mapping.fc1.bias"]}, "'synthesis.b8.extra.weight' that this importer does not know"),
        ({**sd, "synthesis.b8.resample_filter": np.ones((4, 4), np.float32)}, "does not match the resample filter"),
    ]
    for state, message in cases:
        G = op.module_tree("Generator", state, g_kw)
        D = op.module_tree("Discriminator", op.ada_discriminator_state(d_kw, rng), d_kw)
        path = tmp_path / "x.pkl"
        path.write_bytes(op.dumps({"G": G, "D": D, "G_ema": G}, 4))
        nets = official.read(str(path))
        with pytest.raises(UserError, match=message):
            nets.networks["G_ema"].build()


def test_missing_networks(tmp_path):
    g, d = kwargs()
    rng = np.random.RandomState(0)
    D = op.module_tree("Discriminator", op.ada_discriminator_state(d, rng), d)
    G = op.module_tree("Generator", op.ada_generator_state(g, rng), g)
    path = tmp_path / "x.pkl"
    path.write_bytes(op.dumps({"G": D, "D": D, "G_ema": G}, 4))
    with pytest.raises(UserError, match="'G' is a Discriminator"):
        official.read(str(path))
    path.write_bytes(op.dumps({"D": D, "G": G}, 4))
    with pytest.raises(UserError, match="no stylegan2-ada-pytorch network 'G_ema'"):
        official.read(str(path))
    path.write_bytes(op.dumps({"G_ema": G}, 4))  # G_ema alone is enough to sample from
    assert set(official.read(str(path)).networks) == {"G_ema"}
    with pytest.raises(UserError, match="holds no network 'D'"):
        official.convert(str(path), str(tmp_path / "G.keras"), out_d=str(tmp_path / "D.keras"))
    assert sorted(os.listdir(tmp_path)) == ["x.pkl"]
