"""Perceptual path length: a linear generator with a squared-L2 'LPIPS', whose path lengths are
known in closed form; NVIDIA's crop, downsampling and percentile filter; slerp."""

import numpy as np
import pytest
import scipy.integrate
import scipy.stats
import tensorflow as tf

from tf_stylegan2.metrics.perceptual_path_length import filtered_mean, path_lengths, slerp
from metric_helpers import StandInVGG16, tiny_generator

LPIPS = StandInVGG16().lpips  # squared L2 distance between the images


class LinearGenerator:
    """w = z (identity mapping, 2 ws); image = scale * (w . U) on ``mask`` pixels, where U has
    orthonormal rows, so |image(w) - image(w')|^2 = scale^2 |w - w'|^2 (times the mask's share)."""

    def __init__(self, z_dim=6, resolution=16, channels=3, scale=2.0, mask=None, constant=False):
        self.z_dim, self.c_dim, self.img_resolution, self.img_channels = z_dim, 0, resolution, channels
        pixels = resolution * resolution * channels
        if constant:  # the whole image one value per sample: w . u with |u| = 1
            u = np.random.RandomState(0).randn(z_dim, 1)
            self.u = np.tile(u / np.linalg.norm(u), [1, pixels])
        else:
            q, _ = np.linalg.qr(np.random.RandomState(0).randn(pixels, z_dim))
            self.u = q.T  # orthonormal rows
        self.mask = np.ones([resolution, resolution, 1]) if mask is None else mask
        self.scale = scale

    def mapping(self, z, c, truncation_psi=1.0):
        return tf.tile(z[:, None, :], [1, 2, 1])

    def synthesis(self, ws, noise_mode="random", noise_seed=None):
        img = tf.reshape(ws[:, 0] @ tf.constant(self.u, tf.float32), [-1, self.img_resolution, self.img_resolution,
                                                                      self.img_channels])
        return self.scale * img * tf.constant(self.mask, tf.float32)


def trimmed_mean(ppf, cdf_first_moment, lo=0.01, hi=0.99):
    """E[X | ppf(lo) <= X <= ppf(hi)] from the first-moment integral."""
    return cdf_first_moment(ppf(lo), ppf(hi)) / (hi - lo)


@pytest.mark.parametrize("sampling", ["end", "full"])
def test_w_space_is_scaled_chi_square(sampling):
    """lerp in W: d = scale^2 |w1 - w0|^2, w1 - w0 ~ N(0, 2 I): d / (2 scale^2) ~ chi^2_D, whose
    trimmed mean is D (F_{D+2}(b) - F_{D+2}(a)) / 0.98."""
    D, scale, n = 6, 2.0, 4000
    d = path_lengths(LinearGenerator(D, scale=scale), LPIPS, num_samples=n, space="w", sampling=sampling)
    chi = scipy.stats.chi2
    expected = 2 * scale**2 * trimmed_mean(lambda q: chi.ppf(q, D),
                                           lambda a, b: D * (chi.cdf(b, D + 2) - chi.cdf(a, D + 2)))
    assert filtered_mean(d) == pytest.approx(expected, rel=0.03)
    assert np.mean(d) == pytest.approx(2 * scale**2 * D, rel=0.05)


def test_z_space_slerp_moves_at_the_angle():
    """slerp on the unit sphere moves at speed theta = angle(z0, z1): d = scale^2 theta^2; for
    Gaussian directions in D dimensions theta has density proportional to sin^(D-2)."""
    D, scale, n = 6, 2.0, 4000
    d = path_lengths(LinearGenerator(D, scale=scale), LPIPS, num_samples=n, space="z", sampling="full")
    norm = scipy.integrate.quad(lambda t: np.sin(t) ** (D - 2), 0, np.pi)[0]
    cdf = lambda x: scipy.integrate.quad(lambda t: np.sin(t) ** (D - 2), 0, x)[0] / norm  # noqa: E731
    ppf = lambda q: scipy.optimize.brentq(lambda x: cdf(x) - q, 0, np.pi)  # noqa: E731
    moment = lambda a, b: scipy.integrate.quad(lambda t: t**2 * np.sin(t) ** (D - 2), a, b)[0] / norm  # noqa: E731
    expected = scale**2 * trimmed_mean(ppf, moment)
    assert filtered_mean(d) == pytest.approx(expected, rel=0.03)


def test_crop_region_downsampling_and_grayscale_follow_nvidia():
    """Per-sample ratios between variants with the same random numbers: the crop keeps rows 3/8..7/8
    and columns 2/8..6/8; images above 256 are box-downsampled by resolution // 256 (computed from the
    full resolution, also after the crop); grayscale counts three times (tiled to RGB)."""
    def lengths(resolution, crop, channels=3, mask=None):
        G = LinearGenerator(4, resolution=resolution, channels=channels, constant=True, mask=mask)
        return path_lengths(G, LPIPS, num_samples=16, crop=crop, seed=3)

    base = lengths(256, crop=False)
    np.testing.assert_allclose(lengths(256, crop=True) / base, 0.25, rtol=1e-4)  # a quarter of the pixels
    np.testing.assert_allclose(lengths(512, crop=False) / base, 1.0, rtol=1e-4)  # downsampled to 256
    np.testing.assert_allclose(lengths(512, crop=True) / base, 0.25, rtol=1e-4)  # 256 crop -> 128
    np.testing.assert_allclose(lengths(128, crop=False) / base, 0.25, rtol=1e-4)  # not upsampled
    np.testing.assert_allclose(lengths(256, crop=False, channels=1) / base, 1.0, rtol=1e-4)
    inside = np.zeros([64, 64, 1])
    inside[24:56, 16:48] = 1  # rows 3c..7c, columns 2c..6c with c = 8
    np.testing.assert_allclose(lengths(64, True, mask=inside) / lengths(64, False, mask=inside), 1.0, rtol=1e-4)
    np.testing.assert_array_equal(lengths(64, True, mask=1 - inside), 0.0)


def test_filter_keeps_values_between_lower_1st_and_higher_99th_percentile():
    values = np.arange(1000.0)  # 1st percentile 'lower' = 9, 99th 'higher' = 990
    assert filtered_mean(values) == pytest.approx(np.arange(9, 991).mean())
    shuffled = np.random.RandomState(0).permutation(np.concatenate([np.arange(200.0), [1e9, -1e9]]))
    # 202 values, sorted -1e9, 0, .., 199, 1e9: the 1st percentile (index 2.01 -> lower 2) is 1, the
    # 99th (index 198.99 -> higher 199) is 198.
    assert filtered_mean(shuffled) == pytest.approx(np.arange(1, 199).mean())


def test_slerp_stays_on_the_sphere_at_angle_t_theta():
    rs = np.random.RandomState(0)
    a, b = rs.randn(5, 8), rs.randn(5, 8)
    t = rs.rand(5, 1)
    out = slerp(a, b, t)
    unit = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)  # noqa: E731
    theta = np.arccos(np.sum(unit(a) * unit(b), axis=1))
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(np.arccos(np.clip(np.sum(out * unit(a), axis=1), -1, 1)), t[:, 0] * theta, rtol=1e-9)
    np.testing.assert_allclose(np.arccos(np.clip(np.sum(out * unit(b), axis=1), -1, 1)), (1 - t[:, 0]) * theta,
                               rtol=1e-9)


def test_batching_does_not_change_path_lengths():
    G = tiny_generator()
    kw = dict(num_samples=20, space="z", sampling="full", seed=5)
    one = path_lengths(G, LPIPS, groups_per_call=1, **kw)
    np.testing.assert_array_equal(path_lengths(G, LPIPS, groups_per_call=4, **kw), one)
    assert np.all(one > 0) and not np.array_equal(path_lengths(G, LPIPS, **{**kw, "seed": 6}), one)
