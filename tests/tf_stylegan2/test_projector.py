"""The projector against its definitions (stylegan2-ada-pytorch's projector.project): the
schedules and the noise regulariser in closed form, torch's Adam update, target preparation, and
a projection of an image G itself made."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tf_stylegan2.fileio import UserError
from tf_stylegan2.images import animation_format
from tf_stylegan2.projector import (
    ProjectorConfig, _Adam, learning_rate, load_target, lpips_input, noise_regularization, project, psnr,
    save_projection, w_noise_scale, w_statistics,
)
from tf_stylegan2.sampling import load_ws, map_latents, synthesize, z_from_seeds


def test_learning_rate_schedule():
    cfg = ProjectorConfig()  # 1000 steps, peak 0.1, up over 50 steps, down over the last 250
    lr = np.array([learning_rate(i, cfg) for i in range(1000)])
    np.testing.assert_allclose(lr[:50], 0.1 * np.arange(50) / 50, rtol=1e-12, atol=1e-15)  # linear from 0
    np.testing.assert_allclose(lr[50:751], 0.1, rtol=1e-12)  # flat
    # ramp-down: 0.5 - 0.5 cos(pi x) = sin^2(pi x / 2) with x = (1 - t) / 0.25 the time left
    x = (1 - np.arange(751, 1000) / 1000) / 0.25
    np.testing.assert_allclose(lr[751:], 0.1 * np.sin(np.pi * x / 2) ** 2, rtol=1e-12)
    assert lr[875] == pytest.approx(0.05) and 0 < lr[-1] < 1e-5
    short = ProjectorConfig(num_steps=20, initial_learning_rate=0.2)
    assert learning_rate(0, short) == 0 and learning_rate(1, short) == pytest.approx(0.2)  # ramp of one step


def test_w_noise_scale():
    cfg = ProjectorConfig()
    scale = np.array([w_noise_scale(i, cfg, w_std=2.0) for i in range(1000)])
    np.testing.assert_allclose(scale[:750], 2.0 * 0.05 * (1 - np.arange(750) / 750) ** 2, rtol=1e-12)
    assert scale[375] == pytest.approx(2.0 * 0.05 / 4) and not scale[750:].any()


def numpy_noise_regularization(maps):
    total = 0.0
    for x in maps:
        x = np.asarray(x, np.float64)
        while True:
            for axis in (0, 1):
                total += np.mean(x * np.roll(x, 1, axis=axis)) ** 2
            if x.shape[0] <= 8:
                break
            x = 0.25 * (x[0::2, 0::2] + x[1::2, 0::2] + x[0::2, 1::2] + x[1::2, 1::2])
    return total


def test_noise_regularization():
    rng = np.random.RandomState(0)
    maps = [rng.randn(4, 4), rng.randn(8, 8), rng.randn(32, 32) + np.linspace(0, 1, 32)]  # the last one smooth
    got = float(noise_regularization([tf.constant(m, tf.float32) for m in maps]))
    np.testing.assert_allclose(got, numpy_noise_regularization(maps), rtol=1e-5)
    # A checkerboard anticorrelates with itself at every one-pixel shift (mean product -1, twice)
    # and pools to zero; a constant map correlates fully on every level (32, 16, 8: three).
    checker = np.indices([16, 16]).sum(0) % 2 * 2.0 - 1
    assert float(noise_regularization([tf.constant(checker, tf.float32)])) == pytest.approx(2.0)
    assert float(noise_regularization([tf.ones([32, 32])])) == pytest.approx(6.0)


def test_adam_is_torchs_update():
    # torch.optim.Adam, step 1: m_hat = g, v_hat = g^2, p -= lr * g / (|g| + eps). With |g| near eps
    # the place of eps matters (Keras' Adam would move p by 0.24 lr here instead of 0.91 lr).
    p = tf.Variable([1.0, 1.0, 1.0])
    adam = _Adam([p])
    g = tf.constant([1e-7, -2.0, 0.0])
    adam.apply([g], tf.constant(0.1), tf.constant(1.0))
    np.testing.assert_allclose(p.numpy(), [1 - 0.1 * 1e-7 / (1e-7 + 1e-8), 1.1, 1.0], rtol=1e-6)
    adam.apply([g], tf.constant(0.1), tf.constant(2.0))  # constant gradient: another lr * sign(g) step
    np.testing.assert_allclose(p.numpy(), [1 - 0.2 * 1e-7 / (1e-7 + 1e-8), 1.2, 1.0], rtol=1e-5)  # float32 powers


def tiny_generator(resolution=16, c_dim=0, noise_strength=0.0):
    from tf_stylegan2 import Generator, GeneratorConfig, MappingConfig

    import keras

    keras.utils.set_random_seed(3)
    G = Generator(GeneratorConfig(img_resolution=resolution, z_dim=16, w_dim=16, c_dim=c_dim, channel_base=256,
                                  channel_max=32, mapping=MappingConfig(num_layers=2)))
    for v in G.weights:
        if v.name == "noise_strength":
            v.assign(noise_strength)
    return G


def test_w_statistics():
    G = tiny_generator(resolution=8)
    cfg = ProjectorConfig(w_avg_samples=500, w_avg_seed=7)
    w_avg, w_std = w_statistics(G, cfg)
    z = np.random.RandomState(7).randn(500, 16)
    w = G.mapping(tf.constant(z, tf.float32)).numpy()[:, 0].astype(np.float64)
    assert w_avg.shape == (1, 1, 16)
    np.testing.assert_allclose(w_avg[0, 0], w.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(w_std, np.sqrt(np.mean(np.sum((w - w.mean(0)) ** 2, axis=1))), rtol=1e-5)
    G = tiny_generator(resolution=8, c_dim=3)  # conditional: the statistics of the given class
    c = np.eye(3, dtype=np.float32)[2]
    w_avg, _ = w_statistics(G, cfg, c)
    w = G.mapping(tf.constant(z, tf.float32), tf.constant(np.tile(c, [500, 1]))).numpy()[:, 0]
    np.testing.assert_allclose(w_avg[0, 0], w.mean(0), rtol=1e-5, atol=1e-6)


def test_load_target(tmp_path):
    rng = np.random.RandomState(0)
    wide = rng.randint(0, 256, [30, 50, 3]).astype(np.uint8)  # H 30, W 50: crop columns 10..40
    Image.fromarray(wide).save(tmp_path / "wide.png")
    expected = Image.fromarray(wide[:, 10:40]).resize((16, 16), Image.Resampling.LANCZOS)
    np.testing.assert_array_equal(load_target(str(tmp_path / "wide.png"), 16), np.asarray(expected))
    Image.fromarray(wide[..., 0]).save(tmp_path / "gray.png")  # a gray target for an RGB G is tiled
    rgb = load_target(str(tmp_path / "gray.png"), 8)
    assert rgb.shape == (8, 8, 3) and (rgb[..., 0] == rgb[..., 2]).all()
    assert load_target(str(tmp_path / "wide.png"), 8, channels=1).shape == (8, 8, 1)
    (tmp_path / "text.png").write_text("not an image")
    with pytest.raises(UserError, match="is not a readable image"):
        load_target(str(tmp_path / "text.png"), 8)
    with pytest.raises(UserError, match="no such target image"):
        load_target(str(tmp_path / "missing.png"), 8)


def test_psnr_and_lpips_input():
    a = np.full([4, 4, 3], 100, np.uint8)
    assert psnr(a, a + 1) == pytest.approx(10 * np.log10(255**2))
    assert psnr(a, a) == float("inf")
    big = tf.constant(np.random.randn(1, 64, 64, 1), tf.float32)
    small = lpips_input(big, max_resolution=16).numpy()  # box filter (area) down to 16x16, gray tiled
    assert small.shape == (1, 16, 16, 3)
    np.testing.assert_allclose(small[0, 1, 0, 2], big.numpy()[0, 4:8, :4].mean(), rtol=1e-5)


@pytest.fixture(scope="module")
def vgg16():
    """NVIDIA-layout VGG16 + LPIPS with the evaluation tests' random weights (no weight file)."""
    from metrics.random_weights import lpips_state, vgg16_state
    from tf_stylegan2.metrics.detectors import build_vgg16

    return build_vgg16(vgg16_state(), {"network": "vgg16", "file": "random"}, lpips_state())


def test_lpips_features_give_the_lpips_distance(vgg16):
    rng = np.random.RandomState(0)
    a, b = (tf.constant(rng.uniform(-1, 1, [3, 16, 16, 3]), tf.float32) for _ in range(2))
    fa, fb = vgg16.lpips_features(a).numpy(), vgg16.lpips_features(b).numpy()
    np.testing.assert_allclose(np.sum((fa - fb) ** 2, axis=1), vgg16.lpips(a, b).numpy(), rtol=1e-5)
    with pytest.raises(ValueError, match="at least 16x16"):  # VGG16 halves the image four times
        vgg16.lpips_features(a[:, :8, :8])


def test_projection_of_an_image_G_made(tmp_path, vgg16):
    G = tiny_generator(noise_strength=0.1)  # noise that matters, so that the noise maps are optimised too
    noise_before = [v.numpy() for v in G.weights if v.name == "noise_const"]
    w_true = map_latents(G, z_from_seeds([11], 16))
    target = synthesize(G, w_true)[0]
    cfg = ProjectorConfig(num_steps=100, w_avg_samples=1000)
    steps, feature_calls = [], []

    def lpips_features(images):  # counts the Python calls: the target's, then one trace of the step
        feature_calls.append(images.shape)
        return vgg16.lpips_features(images)

    projection = project(G, target, lpips_features, cfg, seed=5, on_step=lambda *a: steps.append(a))
    assert [s[0] for s in steps] == list(range(1, 101))
    assert len(feature_calls) == 2  # 100 steps ran as one traced tf.function, not op by op
    assert projection.w_steps.shape == (100, G.num_ws, 16) and projection.w.shape == (1, G.num_ws, 16)
    np.testing.assert_array_equal(projection.w[0, 0], projection.w[0, -1])  # one w for all layers
    for v, before in zip([v for v in G.weights if v.name == "noise_const"], noise_before):
        np.testing.assert_array_equal(v.numpy(), before)  # G's own noise is untouched
    summary = save_projection(str(tmp_path), G, target, projection, vgg16.lpips_features, {"seed": 5},
                              save_video=True)
    video = f"proj.{animation_format()}"
    assert sorted(os.listdir(tmp_path)) == sorted(["comparison.png", "proj.png", "projected_w.npz",
                                                   "projection.json", "target.png", video])
    if video.endswith(".gif"):
        with Image.open(tmp_path / video) as gif:  # target | synthesis after every step, at 10 frames/s
            assert gif.size == (32, 16)
            durations = []
            for k in range(gif.n_frames):  # Pillow merges repeated frames and adds up their times
                gif.seek(k)
                durations.append(gif.info["duration"])
            assert sum(durations) == 100 * 100
    ws = load_ws(str(tmp_path / "projected_w.npz"), G)
    np.testing.assert_array_equal(ws, projection.w)
    proj = np.asarray(Image.open(tmp_path / "proj.png"))
    np.testing.assert_array_equal(proj, synthesize(G, ws)[0])
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "comparison.png")),
                                  np.concatenate([target, proj], axis=1))
    assert json.loads((tmp_path / "projection.json").read_text()) == pytest.approx(summary)
    start = synthesize(G, projection.w_steps[:1])[0]  # after one step (at lr 0): the mean w
    print("self-projection: LPIPS", summary["lpips"], "(step 1:", summary["lpips_first_step"], ") PSNR",
          summary["psnr"], "(start:", psnr(target, start), ")")
    assert summary["psnr"] == pytest.approx(psnr(target, proj))
    assert summary["lpips"] < 0.15 and summary["lpips"] < 0.25 * summary["lpips_first_step"]
    assert summary["psnr"] > 14 and summary["psnr"] > psnr(target, start) + 6


def test_w_plus_optimises_one_w_per_layer(vgg16):
    G = tiny_generator()
    target = synthesize(G, map_latents(G, z_from_seeds([2], 16)))[0]
    projection = project(G, target, vgg16.lpips_features, ProjectorConfig(num_steps=5, w_avg_samples=100, w_plus=True))
    assert projection.w.shape == (1, G.num_ws, 16)
    per_layer = projection.w[0] - projection.w[0].mean(axis=0)
    assert np.abs(per_layer).max() > 1e-3  # the layers moved apart
