"""The ADA pipeline against independent numpy/scipy references, its statistics at p = 1, its
gradients, and the adaptive p against stylegan2-ada's formula."""

import math

import numpy as np
import pytest
import scipy.ndimage
import tensorflow as tf
from scipy.spatial.transform import Rotation

import numpy_ref
from tf_stylegan2.train import augment as A

# stylegan2-ada-pytorch train.py, augpipe_specs: the transforms each pipeline turns on.
BLIT = {"xflip", "rotate90", "xint"}
GEOM = {"scale", "rotate", "aniso", "xfrac"}
COLOR = {"brightness", "contrast", "lumaflip", "hue", "saturation"}
NVIDIA_PIPELINES = {
    "blit": BLIT, "geom": GEOM, "color": COLOR, "filter": {"imgfilter"}, "noise": {"noise"}, "cutout": {"cutout"},
    "bg": BLIT | GEOM, "bgc": BLIT | GEOM | COLOR, "bgcf": BLIT | GEOM | COLOR | {"imgfilter"},
    "bgcfn": BLIT | GEOM | COLOR | {"imgfilter", "noise"},
    "bgcfnc": BLIT | GEOM | COLOR | {"imgfilter", "noise", "cutout"},
}
MULTIPLIERS = sorted(BLIT | GEOM | COLOR | {"imgfilter", "noise", "cutout"})


def seeds(n, offset=0):
    return tf.constant(np.stack([np.arange(n) + offset, np.full(n, 7)], axis=1), tf.int64)


def grid_image(n=2, size=16, channels=3, seed=0):
    """Grid lines over a coloured ramp and noise: edges in every direction, no symmetry."""
    rs = np.random.RandomState(seed)
    y, x = np.mgrid[:size, :size] / (size - 1)
    img = np.zeros([n, size, size, channels], np.float32)
    for i in range(n):
        for k in range(channels):
            img[i, :, :, k] = (x * (k + 1) - y) * 0.6 + rs.uniform(-0.2, 0.2, [size, size])
        lines = (np.mgrid[:size, :size] % 5 == 1).any(axis=0)
        img[i][lines] = 1.0
    return img


_draw = tf.function(A.draw)  # as in training: eager map_fn over thousands of images is slow


def with_draws(cfg, p, n, shape):
    return _draw(cfg, tf.constant(p, tf.float32), seeds(n), tuple(shape))


# ---- the table ------------------------------------------------------------------------------


def test_pipelines_are_stylegan2_adas():
    assert list(A.PIPELINES) == list(NVIDIA_PIPELINES) and A.DEFAULT_PIPELINE == "bgc"
    for name, on in NVIDIA_PIPELINES.items():
        cfg = A.pipeline(name)
        assert {k for k in MULTIPLIERS if getattr(cfg, k) == 1.0} == on, name
        assert all(getattr(cfg, k) == 0.0 for k in MULTIPLIERS if k not in on), name
    # AugmentPipe's default strengths.
    cfg = A.AugmentConfig()
    assert (cfg.xint_max, cfg.scale_std, cfg.rotate_max, cfg.aniso_std, cfg.xfrac_std) == (0.125, 0.2, 1, 0.2, 0.125)
    assert (cfg.brightness_std, cfg.contrast_std, cfg.hue_max, cfg.saturation_std) == (0.2, 0.5, 1, 1)
    assert (cfg.imgfilter_bands, cfg.imgfilter_std, cfg.noise_std, cfg.cutout_size) == ((1, 1, 1, 1), 1, 0.1, 0.5)
    with pytest.raises(ValueError, match="unknown augmentation pipeline 'bgcx'"):
        A.pipeline("bgcx")


@pytest.mark.parametrize("name", list(NVIDIA_PIPELINES))
@pytest.mark.parametrize("channels", [1, 3])
def test_p_zero_is_the_identity(name, channels):
    x = grid_image(3, 16, channels)
    y = A.apply(tf.constant(x), with_draws(A.pipeline(name), 0.0, 3, x.shape[1:])).numpy()
    np.testing.assert_allclose(y, x, atol=2e-6)  # the sym6 resampling round trip is exact up to rounding


# ---- geometry -------------------------------------------------------------------------------


def _nvidia_warp(x, g_inv):
    """NVIDIA's definition of the geometric step (AugmentPipe.forward), written in NCHW float64 with
    scipy: reflect padding by the margin the batch's transformed corners need (plus the filter's
    support, at most size - 1), origin shifted by the asymmetric padding, sym6 2x upsampling,
    the normalised ``affine_grid`` / ``grid_sample(align_corners=False, padding zeros)`` pair,
    then the filtered 2x downsampling that crops the 6-pixel output margin."""
    n, h, w, c = x.shape
    f = np.asarray(A.SYM6) / np.sum(A.SYM6)
    pad = len(f) // 4
    cx, cy = (w - 1) / 2, (h - 1) / 2
    corners = np.array([[-cx, -cy, 1], [cx, -cy, 1], [cx, cy, 1], [-cx, cy, 1]], np.float64).T
    cp = g_inv @ corners  # [N, 3, 4]
    m = np.concatenate([-cp[:, :2].transpose(1, 0, 2).reshape(2, -1), cp[:, :2].transpose(1, 0, 2).reshape(2, -1)])
    m = m.max(axis=1) + np.array([pad * 2 - cx, pad * 2 - cy] * 2)
    mx0, my0, mx1, my1 = np.ceil(np.clip(m, 0, [w - 1, h - 1, w - 1, h - 1])).astype(int)
    img = np.pad(np.asarray(x, np.float64), [(0, 0), (my0, my1), (mx0, mx1), (0, 0)], mode="reflect")

    def t2(tx, ty):
        return np.array([[1, 0, tx], [0, 1, ty], [0, 0, 1]], np.float64)

    def s2(sx, sy):
        return np.diag([sx, sy, 1.0])

    g = t2((mx0 - mx1) / 2, (my0 - my1) / 2) @ g_inv
    img = numpy_ref.upfirdn2d(img, f, up=(2, 2), pad=(6, 5, 6, 5), gain=4)  # upsample2d(f, up=2)
    g = s2(2, 2) @ g @ s2(0.5, 0.5)
    g = t2(-0.5, -0.5) @ g @ t2(0.5, 0.5)
    hi, wi = img.shape[1:3]
    ho, wo = (h + 2 * pad) * 2, (w + 2 * pad) * 2
    g = s2(2 / wi, 2 / hi) @ g @ s2(wo / 2, ho / 2)
    xn = (2 * np.arange(wo) + 1) / wo - 1
    yn = (2 * np.arange(ho) + 1) / ho - 1
    gx = g[:, 0, 0, None, None] * xn[None, None] + g[:, 0, 1, None, None] * yn[None, :, None] + g[:, 0, 2, None, None]
    gy = g[:, 1, 0, None, None] * xn[None, None] + g[:, 1, 1, None, None] * yn[None, :, None] + g[:, 1, 2, None, None]
    ix, iy = ((gx + 1) * wi - 1) / 2, ((gy + 1) * hi - 1) / 2
    out = np.stack([np.stack([scipy.ndimage.map_coordinates(img[i, :, :, k], [iy[i], ix[i]], order=1,
                                                            mode="grid-constant", cval=0.0)
                              for k in range(c)], axis=-1) for i in range(n)])
    return numpy_ref.upfirdn2d(out, f, down=(2, 2), pad=(-1, -1, -1, -1), flip_filter=True)  # downsample2d


def _matrices(n, seed):
    """Inverse matrices mixing every geometric transform: rotation, anisotropic scaling, translation."""
    rs = np.random.RandomState(seed)
    out = []
    for _ in range(n):
        a = rs.uniform(-np.pi, np.pi)
        rot = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
        scale = np.diag([2 ** rs.normal(0, 0.3), 2 ** rs.normal(0, 0.3), 1])
        move = np.array([[1, 0, rs.normal(0, 2)], [0, 1, rs.normal(0, 2)], [0, 0, 1]])
        out.append(rot @ scale @ move)
    return np.stack(out)


@pytest.mark.parametrize("size,seed", [(16, 0), (8, 1)])
def test_affine_warp_of_a_grid_image_matches_nvidias_definition(size, seed):
    x = grid_image(4, size, seed=seed)
    g = _matrices(4, seed)
    ours = A.warp(tf.constant(x), tf.constant(g, tf.float32)).numpy()
    np.testing.assert_allclose(ours, _nvidia_warp(x, g), atol=2e-5)


def test_integer_translation_is_a_pixel_shift_with_reflected_borders():
    x = grid_image(1, 16)
    ours = A.warp(tf.constant(x), A.translate2d(-3.0, 2.0, 1)).numpy()  # inverse: content moves by (+3, -2)
    padded = np.pad(x, [(0, 0), (3, 3), (3, 3), (0, 0)], mode="reflect")
    np.testing.assert_allclose(ours, padded[:, 3 + 2 : 3 + 2 + 16, 3 - 3 : 3 - 3 + 16], atol=2e-6)


def test_rotation_and_scaling_of_a_smooth_pattern():
    """The geometric conventions without NVIDIA's matrix plumbing: a smooth pattern, rotated by 30
    degrees and scaled by 1.25 about the image centre, equals the pattern evaluated where the
    inverse matrix sends each pixel (up to the wavelet interpolation's small error); the opposite
    rotation does not."""
    size = 32
    theta, scale = np.pi / 6, 1.25

    def pattern(px, py):  # px, py: pixel coordinates from the image centre, y down
        return np.cos(0.35 * px + 0.2 * py) * np.exp(-(px**2 + py**2) / 300)

    py, px = np.mgrid[:size, :size] - (size - 1) / 2
    x = pattern(px, py)[None, :, :, None].astype(np.float32)
    inner = np.s_[6:-6, 6:-6]
    for sign, close in ((1, True), (-1, False)):
        c, s = np.cos(sign * theta), np.sin(sign * theta)
        g = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]) @ np.diag([1 / scale, 1 / scale, 1])
        warped = A.warp(tf.constant(x), A.rotate2d(tf.constant([theta]), 1) @ A.scale2d(1 / scale, 1 / scale, 1))
        expected = pattern(g[0, 0] * px + g[0, 1] * py, g[1, 0] * px + g[1, 1] * py)
        assert (np.abs(warped.numpy()[0, :, :, 0][inner] - expected[inner]).max() < 0.02) == close
    assert np.abs(warped.numpy()[0, :, :, 0][inner] - x[0, :, :, 0][inner]).max() > 0.3  # it did move


def test_bilinear_sample_is_zero_outside():
    img = np.arange(12, dtype=np.float32).reshape(1, 3, 4, 1)
    ix = np.array([[[0.5, 3.0, 3.5, -0.5, 1.25]]], np.float32)
    iy = np.array([[[0.0, 2.0, 0.0, 1.0, 1.5]]], np.float32)
    out = A.bilinear_sample(tf.constant(img), tf.constant(ix), tf.constant(iy)).numpy().ravel()
    ref = scipy.ndimage.map_coordinates(img[0, :, :, 0], [iy[0, 0], ix[0, 0]], order=1, mode="grid-constant")
    np.testing.assert_allclose(out, ref, atol=1e-6)


# ---- colour ---------------------------------------------------------------------------------

RED, GREEN, BLUE = (1.0, -1.0, -1.0), (-1.0, 1.0, -1.0), (-1.0, -1.0, 1.0)
COLOURS = np.array([RED, GREEN, BLUE, (0.5, 0.2, -0.4), (0.3, 0.3, 0.3)], np.float32)


def recolour(matrix, colours=COLOURS):
    img = tf.constant(np.broadcast_to(colours[None, :, None, :], [1, len(colours), 2, 3]).copy())
    return A.recolour(img, tf.constant(matrix[None], tf.float32)).numpy()[0, :, 0]


def test_colour_matrices_on_known_colours():
    one = 1
    mean = COLOURS.mean(axis=1, keepdims=True)
    np.testing.assert_allclose(recolour(A.translate3d(0.3, 0.3, 0.3, one)[0].numpy()), COLOURS + 0.3, atol=1e-6)
    np.testing.assert_allclose(recolour(A.scale3d(1.7, 1.7, 1.7, one)[0].numpy()), COLOURS * 1.7, atol=1e-6)
    flip = np.eye(4) - 2 * np.outer(A.LUMA_AXIS, A.LUMA_AXIS)  # reflects the grey component
    np.testing.assert_allclose(recolour(flip), COLOURS - 2 * mean, atol=1e-6)
    # Hue: a third of a turn about the grey axis takes red to green to blue.
    turn = A.rotate3d(A.LUMA_AXIS, tf.constant([2 * np.pi / 3]), one)[0].numpy()
    np.testing.assert_allclose(recolour(turn)[:3], [GREEN, BLUE, RED], atol=1e-6)
    angle = 0.7
    expected = Rotation.from_rotvec(angle * A.LUMA_AXIS[:3]).apply(COLOURS)
    np.testing.assert_allclose(recolour(A.rotate3d(A.LUMA_AXIS, tf.constant([angle]), one)[0].numpy()), expected,
                               atol=1e-6)
    vv = np.outer(A.LUMA_AXIS, A.LUMA_AXIS)
    for s in (0.0, 0.4, 2.5):  # saturation: grey kept, colour scaled
        np.testing.assert_allclose(recolour(vv + (np.eye(4) - vv) * s), mean + s * (COLOURS - mean), atol=1e-6)


def test_draws_compose_in_nvidias_order():
    """Each transform reads fixed slots of an image's random numbers, so a pipeline's matrix is the
    product of the single transforms' matrices, in stylegan2-ada's order: blits then general
    geometry right-multiplied onto the inverse matrix, colour transforms left-multiplied onto the
    colour matrix (brightness first, saturation last)."""
    def single(**on):
        return with_draws(A.AugmentConfig(**on), 1.0, 16, (8, 8, 3))

    geom = lambda **on: single(**on)["geom"].numpy()  # noqa: E731
    colour = lambda **on: single(**on)["color"].numpy()  # noqa: E731
    np.testing.assert_allclose(geom(xflip=1, rotate90=1, xint=1), geom(xflip=1) @ geom(rotate90=1) @ geom(xint=1),
                               atol=1e-5)
    np.testing.assert_allclose(geom(scale=1, aniso=1, xfrac=1), geom(scale=1) @ geom(aniso=1) @ geom(xfrac=1),
                               atol=1e-5)
    full = colour(brightness=1, contrast=1, lumaflip=1, hue=1, saturation=1)
    parts = [colour(**{k: 1}) for k in ("saturation", "hue", "lumaflip", "contrast", "brightness")]
    np.testing.assert_allclose(full, parts[0] @ parts[1] @ parts[2] @ parts[3] @ parts[4], atol=1e-5)


def test_grayscale_colour_uses_the_mean_of_the_rgb_rows():
    img = tf.constant(np.linspace(-1, 1, 6, dtype=np.float32).reshape(1, 2, 3, 1))
    flip = np.eye(4) - 2 * np.outer(A.LUMA_AXIS, A.LUMA_AXIS)
    np.testing.assert_allclose(A.recolour(img, tf.constant(flip[None], tf.float32)).numpy(), -img.numpy(), atol=1e-6)
    shift = A.translate3d(0.25, 0.25, 0.25, 1) @ A.scale3d(2.0, 2.0, 2.0, 1)
    np.testing.assert_allclose(A.recolour(img, shift).numpy(), img.numpy() * 2 + 0.25, atol=1e-6)
    assert "color" not in with_draws(A.AugmentConfig(hue=1, saturation=1), 1.0, 2, (4, 4, 1))  # RGB only


# ---- filtering, noise, cutout ------------------------------------------------------------------


def test_filter_bank_splits_an_impulse_into_four_bands():
    bank = A.filter_bank()
    assert bank.shape == (4, 43)
    impulse = np.zeros(43)
    impulse[21] = 1
    np.testing.assert_allclose(bank.sum(axis=0), impulse, atol=1e-6)
    np.testing.assert_allclose(bank.sum(axis=1), [1, 0, 0, 0], atol=1e-6)  # only the lowest band passes DC
    np.testing.assert_allclose(bank, bank[:, ::-1], atol=1e-7)  # symmetric: correlation = convolution
    # Octave bands: their peak frequencies rise from the first to the last, which peaks above pi / 2.
    freqs = np.linspace(0, np.pi, 512)
    response = np.abs(np.exp(-1j * np.outer(freqs, np.arange(43))) @ bank.T.astype(np.float64))
    peaks = freqs[np.argmax(response, axis=0)]
    assert peaks[0] < peaks[1] < peaks[2] < peaks[3] and peaks[3] > np.pi / 2


def test_image_filter_matches_scipy_with_reflection():
    x = grid_image(2, 32)
    taps = np.random.RandomState(0).randn(2, 43).astype(np.float32)
    taps = (taps + taps[:, ::-1]) / 2
    ours = A.filter_images(tf.constant(x), tf.constant(taps)).numpy()
    ref = np.stack([np.stack([
        scipy.ndimage.correlate1d(scipy.ndimage.correlate1d(x[i, :, :, k].astype(np.float64), taps[i], axis=1,
                                                            mode="mirror"), taps[i], axis=0, mode="mirror")
        for k in range(3)], axis=-1) for i in range(2)])
    np.testing.assert_allclose(ours, ref, atol=1e-4)
    # Images smaller than the filter reflect periodically, and 16-pixel images filter too.
    small = A.filter_images(tf.constant(grid_image(1, 16)), tf.constant(taps[:1]))
    assert small.shape == (1, 16, 16, 3)
    np.testing.assert_array_equal(A.reflect_indices(3, 5, 5), [1, 0, 1, 2, 1, 0, 1, 2, 1, 0, 1, 2, 1])


def test_band_gains_of_image_filtering():
    """One band at a time (bands (0, 1, 0, 0)): the taps are g @ bank with g = (1, t, 1, 1), t log-normal
    with log2 std 1, normalised to the expected power (10, 1, 1, 1) / 13."""
    cfg = A.AugmentConfig(imgfilter=1, imgfilter_bands=(0, 1, 0, 0))
    taps = with_draws(cfg, 1.0, 400, (8, 8, 3))["filter"].numpy()
    gains = np.linalg.lstsq(A.filter_bank().T.astype(np.float64), taps.T, rcond=None)[0].T  # [N, 4]
    np.testing.assert_allclose(gains[:, 0], gains[:, 2], atol=1e-4)
    np.testing.assert_allclose(gains[:, 0], gains[:, 3], atol=1e-4)
    np.testing.assert_allclose((gains**2) @ (np.array([10, 1, 1, 1]) / 13), 1, atol=1e-4)
    log_t = np.log2(gains[:, 1] / gains[:, 0])
    assert abs(log_t.mean()) < 0.15 and abs(log_t.std() - 1) < 0.1


def test_noise_and_cutout_statistics_at_p_one():
    n, size = 400, 16
    x = np.zeros([n, size, size, 3], np.float32)
    noisy = A.apply(tf.constant(x), with_draws(A.pipeline("noise"), 1.0, n, x.shape[1:])).numpy()
    sigma = noisy.reshape(n, -1).std(axis=1)
    assert abs(sigma.mean() - 0.1 * math.sqrt(2 / math.pi)) < 0.006  # |N(0, 0.1)|
    assert abs(np.mean(sigma < 0.1 * 0.674) - 0.5) < 0.06  # its median
    ones = np.ones_like(x)
    cut = A.apply(tf.constant(ones), with_draws(A.pipeline("cutout"), 1.0, n, x.shape[1:])).numpy()
    # A square of side 1/2 centred uniformly in the image: E[area inside] = (1/2 - 1/16)^2.
    assert abs((1 - cut).mean() - 0.4375**2) < 0.01
    rows = (cut[..., 0] == 0).any(axis=2).sum(axis=1)
    assert rows.max() == size // 2 and set(np.unique(cut)) == {0.0, 1.0}


# ---- the draws --------------------------------------------------------------------------------

N_STATS = 2000


@pytest.fixture(scope="module")
def geometry_draws():
    def single(name):
        return with_draws(A.AugmentConfig(**{name: 1.0}), 1.0, N_STATS, (16, 16, 3))["geom"].numpy()

    return {name: single(name) for name in sorted(BLIT | GEOM)}


def test_blit_draws_at_p_one(geometry_draws):
    flip = geometry_draws["xflip"]
    assert set(np.round(flip[:, 0, 0], 6)) == {-1.0, 1.0} and abs(np.mean(flip[:, 0, 0] < 0) - 0.5) < 0.04
    rot = geometry_draws["rotate90"]
    quarter = np.round(np.arctan2(rot[:, 1, 0], rot[:, 0, 0]) / (np.pi / 2)).astype(int) % 4
    assert all(abs(np.mean(quarter == k) - 0.25) < 0.04 for k in range(4))
    # Integer translation: round(uniform(-1/8, 1/8) * 16) pixels per axis, so -2..2 with 1/8, 1/4, 1/4,
    # 1/4, 1/8 (round half to even), both axes from one gate.
    t = geometry_draws["xint"][:, :2, 2]
    freq = [np.mean(t[:, 0] == k) for k in range(-2, 3)]
    np.testing.assert_allclose(freq, [1 / 8, 1 / 4, 1 / 4, 1 / 4, 1 / 8], atol=0.03)
    assert abs(np.corrcoef(t.T)[0, 1]) < 0.08


def test_geometric_draws_at_p_one(geometry_draws):
    s = 1 / geometry_draws["scale"][:, 0, 0]
    assert np.allclose(geometry_draws["scale"][:, 0, 0], geometry_draws["scale"][:, 1, 1])
    assert abs(np.log2(s).std() - 0.2) < 0.01 and abs(np.log2(s).mean()) < 0.015
    g = geometry_draws["aniso"]
    assert np.allclose(g[:, 0, 0] * g[:, 1, 1], 1, atol=1e-5) and abs(np.log2(g[:, 1, 1]).std() - 0.2) < 0.01
    frac = -geometry_draws["xfrac"][:, :2, 2] / 16
    assert abs(frac.std() - 0.125) < 0.006 and abs(np.corrcoef(frac.T)[0, 1]) < 0.08
    # Two rotations (before and after the anisotropic scaling), each firing with 1 - sqrt(1 - p): at p = 1
    # both, so the total angle is the sum of two uniform angles.
    r = geometry_draws["rotate"]
    angle = np.arctan2(r[:, 1, 0], r[:, 0, 0])
    assert np.allclose(r[:, 0, 0] * r[:, 1, 1] - r[:, 0, 1] * r[:, 1, 0], 1, atol=1e-5)
    assert abs(np.mean(np.abs(angle) < np.pi / 2) - 0.5) < 0.04  # sum of two uniforms, wrapped: uniform


def test_gates_fire_with_probability_multiplier_times_p():
    d = with_draws(A.AugmentConfig(rotate90=1, brightness=0.5, rotate=1), 0.6, N_STATS, (8, 8, 3))
    g, c = d["geom"].numpy(), d["color"].numpy()
    assert abs(np.mean(c[:, 0, 3] != 0) - 0.5 * 0.6) < 0.03  # brightness: multiplier 0.5 times p
    # Arbitrary rotation (an angle that is no multiple of 90 degrees): before or after the anisotropic
    # scaling, each with p_rot = 1 - sqrt(1 - p), so P(either) = p.
    rotated = np.abs(np.arctan2(g[:, 1, 0], g[:, 0, 0]) % (np.pi / 2)) > 1e-4
    assert abs(np.mean(rotated) - 0.6) < 0.03


def test_colour_draws_at_p_one():
    def single(name):
        return with_draws(A.AugmentConfig(**{name: 1.0}), 1.0, N_STATS, (4, 4, 3))["color"].numpy()

    b = single("brightness")[:, 0, 3]
    assert abs(b.std() - 0.2) < 0.01
    k = single("contrast")[:, 0, 0]
    assert abs(np.log2(k).std() - 0.5) < 0.02
    flips = np.isclose(single("lumaflip")[:, 0, 0], 1 - 2 / 3)
    assert abs(flips.mean() - 0.5) < 0.04
    hue = single("hue")
    cos = (np.trace(hue[:, :3, :3], axis1=1, axis2=2) - 1) / 2  # rotation angle about the grey axis
    assert abs(np.mean(cos < 0) - 0.5) < 0.04  # uniform in [-pi, pi]: |angle| > pi/2 half the time
    s = single("saturation")
    assert abs(np.log2(s[:, 0, 0] * 3 / 2 - 0.5).std() - 1) < 0.05  # vv + (I - vv) s: diagonal 1/3 + 2 s / 3


def test_draws_are_per_image():
    """An image's draws depend on its own seed only, not on the batch it comes in."""
    cfg = A.pipeline("bgcfnc")
    both = _draw(cfg, tf.constant(0.7), seeds(6), (8, 8, 3))
    tail = _draw(cfg, tf.constant(0.7), seeds(2, offset=4), (8, 8, 3))
    for key in both:
        np.testing.assert_array_equal(both[key].numpy()[4:], tail[key].numpy(), err_msg=key)


# ---- gradients, XLA -------------------------------------------------------------------------


def test_gradient_matches_finite_differences():
    x = tf.constant(grid_image(2, 8))
    d = with_draws(A.pipeline("bgcfnc"), 1.0, 2, (8, 8, 3))
    v = tf.constant(np.random.RandomState(3).randn(2, 8, 8, 3).astype(np.float32))
    f = lambda img: tf.reduce_sum(A.apply(img, d) * v)  # noqa: E731
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = f(x)
    grad = tape.gradient(y, x).numpy()
    rs = np.random.RandomState(4)
    for _ in range(3):
        e = rs.randn(*x.shape).astype(np.float32)
        h = 0.05
        fd = (float(f(x + h * e)) - float(f(x - h * e))) / (2 * h)  # affine in x: exact up to rounding
        assert abs(fd - np.sum(grad * e)) < 1e-3 * max(1.0, abs(fd)), (fd, np.sum(grad * e))


def test_second_order_r1_through_the_pipeline():
    """R1 through augmentation: with D(y) = a * sum(y^2) and y = A(x) affine, |grad_x D|^2 is
    4 a^2 |J^T A(x)|^2, quadratic in a: its derivative in a, by nested tapes, against finite differences."""
    x = tf.constant(grid_image(2, 8))
    d = with_draws(A.pipeline("bgcfnc"), 1.0, 2, (8, 8, 3))
    a = tf.Variable(0.3)

    def penalty():
        with tf.GradientTape() as inner:
            inner.watch(x)
            logits = a * tf.reduce_sum(tf.square(A.apply(x, d)))
        return tf.reduce_sum(tf.square(inner.gradient(logits, x)))

    with tf.GradientTape() as outer:
        value = penalty()
    grad = float(outer.gradient(value, a))
    np.testing.assert_allclose(grad, 2 * float(value) / 0.3, rtol=1e-4)  # quadratic in a


def test_xla_and_p_as_input():
    """Draws outside the compiled function, application inside: XLA gives the eager result, and
    another p does not retrace the draws."""
    cfg = A.pipeline("bgcfnc")
    x = tf.constant(grid_image(2, 16))
    p = tf.Variable(0.5)
    draws = tf.function(lambda: A.draw(cfg, p, seeds(2), (16, 16, 3)))
    compiled = tf.function(A.apply, jit_compile=True)
    d = draws()
    np.testing.assert_allclose(compiled(x, d).numpy(), A.apply(x, d).numpy(), atol=1e-4)
    p.assign(0.9)
    d2 = draws()
    assert draws.experimental_get_tracing_count() == 1
    assert not np.allclose(d2["geom"].numpy(), d["geom"].numpy())


# ---- adaptive p -------------------------------------------------------------------------------


def test_adaptive_p_follows_stylegan2_adas_formula():
    batch, interval, kimg = 32, 4, 500
    ada = A.AdaptiveP(0.0, 0.6, batch, interval, kimg)
    step = batch * interval / (kimg * 1000)
    p = 0.0
    rs = np.random.RandomState(0)
    for batch_idx in range(1, 41):
        # Two phases judge reals in some minibatches (Dmain always, Dreg every 16th): both count.
        phases = 2 if batch_idx % 16 == 1 else 1
        signs = [np.sign(rs.randn(batch) + (2.0 if batch_idx < 25 else -1.0)) for _ in range(phases)]
        for s in signs:
            ada.accumulate(tf.constant(s.sum()), batch)
        window = window + signs if batch_idx % interval != 1 else signs
        ada.adjust(tf.constant(batch_idx, tf.int64))
        if batch_idx % interval == 0:
            rt = np.concatenate(window).mean()
            p = min(max(p + np.sign(rt - 0.6) * step, 0), 1)
            assert float(ada.rt.numpy()) == pytest.approx(rt, abs=1e-6)
        assert float(ada.p.numpy()) == pytest.approx(p, abs=1e-6), batch_idx
    assert p == pytest.approx(2 * step)  # rose 6 times while D was confident, then fell 4 times


def test_adaptive_p_clamps_and_fixed_p_stays():
    ada = A.AdaptiveP(0.999, 0.6, 64, 4, 0.001)  # one adjustment moves p by 256
    ada.accumulate(tf.constant(64.0), 64)
    ada.adjust(tf.constant(4, tf.int64))
    assert float(ada.p.numpy()) == 1.0
    ada.accumulate(tf.constant(-64.0), 64)
    ada.adjust(tf.constant(8, tf.int64))
    assert float(ada.p.numpy()) == 0.0
    fixed = A.AdaptiveP(0.25, None, 64)
    fixed.accumulate(tf.constant(64.0), 64)
    fixed.adjust(tf.constant(4, tf.int64))
    assert float(fixed.p.numpy()) == 0.25
    with pytest.raises(ValueError, match=r"p must lie in \[0, 1\]"):
        A.AdaptiveP(1.5, None, 64)
