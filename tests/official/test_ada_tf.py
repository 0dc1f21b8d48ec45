"""stylegan2-ada TF pickles: our imported networks compute what its TF definition computes."""

import io

import numpy as np
import nvidia_ref as ref
import official_pickles as op
import pytest
import tensorflow as tf

from tf_stylegan2 import official
from tf_stylegan2.fileio import UserError
from tf_stylegan2.official import safe_unpickle

# Tiny networks: nf(stage) = min(fmap_base / 2**stage, fmap_max) = 32, 32, 16 channels at 4, 8, 16.
G_KW = dict(resolution=16, num_channels=3, label_size=0, fmap_base=128, fmap_max=32, latent_size=16, dlatent_size=16,
            mapping_layers=2, num_fp16_res=2, conv_clamp=256)
D_KW = dict(resolution=16, num_channels=3, label_size=0, fmap_base=128, fmap_max=32, num_fp16_res=2, conv_clamp=256)


def write(tmp_path, g_kw, d_kw, **kwargs):
    data, variables = op.ada_tf_pickle(g_kw, d_kw, **kwargs)
    path = tmp_path / "network-snapshot.pkl"
    path.write_bytes(data)
    return str(path), variables


def decoded(g_kw=G_KW, d_kw=D_KW, **kwargs):
    return safe_unpickle.load(io.BytesIO(op.ada_tf_pickle(g_kw, d_kw, **kwargs)[0]), "pickle")


CASES = {
    # train.py's networks: skip G, resnet D, 2 fp16 resolutions, clamp 256, minibatch std over the whole batch.
    "default": ({}, {}),
    # Conditional, D as in its cifar10.pkl: 'orig' with the label embedding alone (mapping_layers=0); G
    # resnet (cifar10.pkl's is skip, covered above); every resolution above 4x4 in float16 and a clamp
    # that binds at every layer.
    "cifar-like": (dict(architecture="resnet", label_size=3, num_fp16_res=4, conv_clamp=0.5, style_mixing_prob=None),
                   dict(architecture="orig", label_size=3, num_fp16_res=4, conv_clamp=0.5, mbstd_group_size=32)),
    # Conditional with every width chosen: label_fmaps, mapping_fmaps, fmap_const, D's mapping layers
    # and cmap width; no noise, two minibatch-std features of groups of 2, no clamping, float32.
    "options": (dict(architecture="orig", label_size=3, label_fmaps=12, mapping_fmaps=20, fmap_const=8,
                     use_noise=False, num_fp16_res=0, conv_clamp=None, dlatent_avg_beta=None),
                dict(architecture="skip", label_size=3, mapping_layers=2, mapping_fmaps=8, mapping_lrmul=0.05,
                     mbstd_group_size=2, mbstd_num_features=2, num_fp16_res=0, conv_clamp=None)),
    "no-mbstd": (dict(resolution=8, conv_clamp=1.0, num_fp16_res=1), dict(resolution=8, mbstd_num_features=0)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_generator_and_discriminator_match_ada_tf(tmp_path, case):
    g_change, d_change = CASES[case]
    g_kw, d_kw = dict(G_KW, **g_change), dict(D_KW, **d_change)
    path, v = write(tmp_path, g_kw, d_kw)
    nets = official.read(path)
    assert nets.format == "stylegan2-ada TF"
    rng = np.random.RandomState(1)
    res, labels = g_kw["resolution"], g_kw["label_size"]
    z = rng.randn(4, 16)
    c = np.eye(max(labels, 2))[[0, 1, 2 % max(labels, 2), 0]][:, :labels]
    c_tf = tf.constant(c, tf.float32) if labels else None
    for ours_key, tf_key in (("G_ema", "Gs"), ("G", "G")):
        G = nets.networks[ours_key].build()
        for psi, cutoff in [(1.0, None), (0.5, None), (0.7, 2)]:
            expected = ref.ada_tf_generator(v[tf_key], g_kw, z, c, psi, cutoff)
            got = G(tf.constant(z, tf.float32), c_tf, truncation_psi=psi, truncation_cutoff=cutoff, noise_mode="const")
            assert 0.1 < np.abs(expected).max() < 4  # images of a plausible range, about [-1, 1]
            np.testing.assert_allclose(got.numpy().transpose(0, 3, 1, 2), expected, atol=1e-4, rtol=0)
    img = rng.randn(4, 3, res, res)
    expected = ref.ada_tf_discriminator(v["D"], d_kw, img, c)
    got = nets.networks["D"].build()(tf.constant(img.transpose(0, 2, 3, 1), tf.float32), c_tf).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5 * max(1, np.abs(expected).max()), rtol=0)


def test_clamping_and_labels_change_the_reference():
    """The cases above would not notice a clamp or a label that did nothing."""
    g_change, d_change = CASES["cifar-like"]
    g_kw, d_kw = dict(G_KW, **g_change), dict(D_KW, **d_change)
    _, v = op.ada_tf_pickle(g_kw, d_kw)
    z, c = np.random.RandomState(0).randn(2, 16), np.eye(3)[:2]
    img = ref.ada_tf_generator(v["Gs"], g_kw, z, c)
    assert not np.allclose(img, ref.ada_tf_generator(v["Gs"], dict(g_kw, conv_clamp=None), z, c))
    assert not np.allclose(img, ref.ada_tf_generator(v["Gs"], g_kw, z, c[::-1]))
    x = np.random.RandomState(1).randn(2, 3, 16, 16)
    assert not np.allclose(ref.ada_tf_discriminator(v["D"], d_kw, x, c), ref.ada_tf_discriminator(v["D"], d_kw, x, c[::-1]))


def test_options_map_to_our_configs(tmp_path):
    g_change, d_change = CASES["options"]
    path, _ = write(tmp_path, dict(G_KW, **g_change), dict(D_KW, **d_change, freeze_layers=2))
    nets = official.read(path).networks
    g, d = nets["G_ema"].config, nets["D"].config
    assert (g.img_resolution, g.z_dim, g.w_dim, g.c_dim, g.channel_base, g.channel_max) == (16, 16, 16, 3, 256, 32)
    assert (g.architecture, g.use_noise, g.const_channels, g.num_fp16_res, g.conv_clamp) == ("orig", False, 8, 0, None)
    m = g.mapping
    assert (m.num_layers, m.embed_features, m.layer_features, m.lr_multiplier, m.w_avg_beta) == (2, 12, 20, 0.01, 1.0)
    assert (d.c_dim, d.cmap_dim, d.architecture, d.mbstd_group_size, d.mbstd_num_channels) == (3, 8, "skip", 2, 2)
    assert (d.mapping.num_layers, d.mapping.embed_features, d.mapping.layer_features, d.mapping.lr_multiplier) == (2, 8, 8, 0.05)
    # The defaults of training/networks.py: mapping_fmaps = dlatent_size, label_fmaps = latent_size,
    # mbstd over the whole minibatch, D's label mapping without layers at lrmul 0.1 to nf(0) features.
    path, _ = write(tmp_path, dict(G_KW, label_size=2, latent_size=24), dict(D_KW, label_size=2))
    nets = official.read(path).networks
    g, d = nets["G_ema"].config, nets["D"].config
    assert (g.z_dim, g.mapping.embed_features, g.mapping.layer_features, g.const_channels) == (24, 24, None, None)
    assert (g.num_fp16_res, g.conv_clamp, g.mapping.w_avg_beta) == (2, 256, 0.995)
    assert (d.mbstd_group_size, d.mbstd_num_channels, d.cmap_dim) == (None, 1, 32)
    assert (d.mapping.num_layers, d.mapping.embed_features, d.mapping.lr_multiplier) == (0, 32, 0.1)


def test_the_two_tf_releases_are_told_apart(tmp_path):
    """By build functions: D_main / G_synthesis are stylegan2-ada's, D_stylegan2 / G_synthesis_stylegan2 StyleGAN2's."""
    (tmp_path / "tf1.pkl").write_bytes(op.tf1_pickle(dict(G_KW, num_fp16_res=None, conv_clamp=None), D_KW)[0])
    with pytest.raises(UserError, match="TF1 option 'conv_clamp' is not supported .*networks_stylegan2.py"):
        official.read(str(tmp_path / "tf1.pkl"))  # StyleGAN2's networks have no such options
    plain = {k: v for k, v in G_KW.items() if k not in ("num_fp16_res", "conv_clamp")}
    (tmp_path / "tf1.pkl").write_bytes(op.tf1_pickle(plain, {k: v for k, v in D_KW.items() if k in plain})[0])
    assert official.read(str(tmp_path / "tf1.pkl")).format == "StyleGAN2 TF1"
    path, _ = write(tmp_path, G_KW, D_KW, d_func="D_stylegan2")  # one ada network is enough to say which
    with pytest.raises(UserError, match="D: network 'D_stylegan2' is not supported; only stylegan2-ada's D_main"):
        official.read(path)


def replace_variable(net, name, value):
    net.state["variables"] = [(n, value if n == name else v) for n, v in net.state["variables"]]


def synthesis(data):
    return data[2].state["components"]["synthesis"]


@pytest.mark.parametrize("change, message", [
    # a pickle missing a network, or a network missing a part
    (lambda d: d[::2], r"holds 2 TF networks in a tuple of 2 items; .* holds three: \(G, D, Gs\)"),
    (lambda d: (d[0], None, d[2]), "holds 2 TF networks in a tuple of 3 items"),
    (lambda d: d[2].state["components"].pop("synthesis") and d, "Gs: the generator has no 'synthesis' sub-network"),
    # unknown build functions and versions
    (lambda d: synthesis(d).state.update(build_func_name="G_synthesis_stylegan_revised") or d,
     "Gs/synthesis: network 'G_synthesis_stylegan_revised' is not supported; only stylegan2-ada's G_synthesis"),
    (lambda d: d[0].state.update(build_func_name="G_style") or d, "G: network 'G_style' is not supported"),
    (lambda d: d[1].state.update(version=4) or d, r"D: TF1 Network pickle version 4 is not supported \(stylegan2-ada writes version 5\)"),
    # options of the wrong type or range, unknown options
    (lambda d: d[2].state["static_kwargs"].update(num_fp16_res="4") or d, "Gs: option num_fp16_res='4' is not supported"),
    (lambda d: d[2].state["static_kwargs"].update(conv_clamp=-1) or d, r"option conv_clamp=-1.0 is not supported \(expected a finite number > 0"),
    (lambda d: d[2].state["static_kwargs"].update(fmap_const=2.5) or d, "option fmap_const=2.5 is not supported"),
    (lambda d: d[2].state["static_kwargs"].update(use_noise=1) or d, r"option use_noise=1 is not supported \(expected True or False\)"),
    (lambda d: d[2].state["static_kwargs"].update(label_fmaps=-1) or d, "option label_fmaps=-1 is not supported"),
    (lambda d: d[1].state["static_kwargs"].update(mbstd_group_size=0) or d, "D: option mbstd_group_size=0 is not supported"),
    (lambda d: d[1].state["static_kwargs"].update(mapping_layers=None) or d, "D: option mapping_layers=None"),
    (lambda d: d[1].state["static_kwargs"].update(mbstd_num_features=3) or d, "32 channels at 4x4 cannot be split into"),
    (lambda d: d[2].state["static_kwargs"].update(fmap_decay=0.5) or d, "cannot express"),
    (lambda d: d[2].state["static_kwargs"].update(normalize_latents=False) or d, "normalize_latents=False"),
    (lambda d: d[1].state["static_kwargs"].update(structure="linear") or d,
     r"D: TF1 option 'structure' is not supported by this importer \(only the stylegan2-ada release's training/networks.py"),
    # the paper's comparison methods, and a clamp NVIDIA's TF D applies where ours does not
    (lambda d: d[1].state["static_kwargs"].update(use_pagan=True) or d, "D: use_pagan=True .* comparison method"),
    (lambda d: d[1].state["static_kwargs"].update(use_spectral_norm=True) or d, "use_spectral_norm=True .* not supported"),
    (lambda d: d[1].state["static_kwargs"].update(adaptive_dropout=1.0) or d, "adaptive_dropout=1.0 .* not supported"),
    (lambda d: d[1].state["static_kwargs"].update(score_max=5) or d, "score_max=5 .* not supported"),
    (lambda d: d[1].state["static_kwargs"].update(architecture="skip") or d,
     "a skip discriminator with conv_clamp is not supported: .* clamps its 4x4 FromRGB"),
    # variables of the wrong shape or rank
    (lambda d: replace_variable(synthesis(d), "noise0", np.zeros((4, 4), np.float32)) or d,
     r"'synthesis/noise0' has shape \[4, 4\], expected \[1, 1, ...\]"),
    (lambda d: replace_variable(d[1], "Output/weight", np.zeros(32, np.float32)) or d,
     r"'Output/weight' has shape \[32\], expected 2 axes"),
])
def test_bad_pickles_are_one_line_user_errors(change, message):
    with pytest.raises(UserError, match=message) as e:
        official.read_data(change(decoded()), "x.pkl")
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("name, shape, message", [
    ("mapping/LabelEmbed/weight", (3, 15), r"G_ema: official weight 'mapping.embed.weight' has shape \[15, 3\], which does not fit"),
    ("synthesis/4x4/Const/const", (1, 8, 4, 4), "'synthesis.b4.const' has shape"),  # fmap_const was not recorded
])
def test_variables_that_do_not_fit_the_options_are_named_when_building(name, shape, message):
    data = decoded(dict(G_KW, label_size=3), dict(D_KW, label_size=3))
    mapping, syn = data[2].state["components"]["mapping"], synthesis(data)
    replace_variable(mapping if name.startswith("mapping") else syn, name.split("/", 1)[1], np.zeros(shape, np.float32))
    net = official.read_data(data, "x.pkl").networks["G_ema"]
    with pytest.raises(UserError, match=message):
        net.build()


def test_label_mapping_of_the_wrong_width_is_named():
    data = decoded(dict(G_KW, label_size=3), dict(D_KW, label_size=3))
    replace_variable(data[1], "LabelEmbed/weight", np.zeros((3, 8), np.float32))
    with pytest.raises(UserError, match=r"D: official weight 'mapping.embed.weight' has shape \[8, 3\]"):
        official.read_data(data, "x.pkl").networks["D"].build()
