"""Style mixing, interpolation and the animation writer, against their definitions."""

import os

import numpy as np
import pytest
from PIL import Image

from tf_stylegan2 import Generator, GeneratorConfig, MappingConfig
from tf_stylegan2.fileio import UserError
from tf_stylegan2.images import save_animation
from tf_stylegan2.pictures import interpolation, lerp, mix_styles, parse_styles, slerp, style_mixing, walk_positions
from tf_stylegan2.sampling import (
    class_labels, generate_images, load_ws, map_latents, parse_truncation, synthesize, z_from_seeds,
)


def small_generator(c_dim: int = 0) -> Generator:
    G = Generator(GeneratorConfig(img_resolution=8, z_dim=6, w_dim=6, c_dim=c_dim, channel_base=64, channel_max=8,
                                  mapping=MappingConfig(num_layers=2)))
    G.mapping.w_avg.assign(np.linspace(-0.5, 0.5, 6).astype(np.float32))  # truncation must move something
    return G


def test_parse_styles_checks_the_layer_range():
    assert parse_styles("0-2,5", 6) == [0, 1, 2, 5]
    assert parse_styles("3,1,1", 6) == [1, 3]
    with pytest.raises(UserError, match=r"names layer 6, but this generator has 6 ws \(layers 0-5\)"):
        parse_styles("4-6", 6)
    with pytest.raises(UserError, match="bad style list"):
        parse_styles("0-x", 6)


def test_parse_truncation():
    assert parse_truncation("0.7") == [0.7] and parse_truncation("1, 0.7,0.5") == [1.0, 0.7, 0.5]
    for bad in ["0.7,x", "", "nan"]:
        with pytest.raises(UserError, match="bad truncation list"):
            parse_truncation(bad)


def test_load_ws_checks_the_file_against_G(tmp_path):
    G = small_generator()  # 4 ws of 6
    ws = np.random.randn(2, 4, 6).astype(np.float32)
    np.savez(tmp_path / "ok.npz", w=ws)
    np.testing.assert_array_equal(load_ws(str(tmp_path / "ok.npz"), G), ws)
    np.savez(tmp_path / "num_ws.npz", w=np.zeros([1, 5, 6]))
    np.savez(tmp_path / "flat.npz", w=np.zeros([4, 6]))
    np.savez(tmp_path / "ints.npz", w=np.zeros([1, 4, 6], np.int32))
    np.savez(tmp_path / "nan.npz", w=np.full([1, 4, 6], np.nan))
    np.savez(tmp_path / "other.npz", ws=ws)
    np.save(tmp_path / "bare.npy", ws)
    (tmp_path / "text.npz").write_text("not numpy")
    for name, message in [
        ("num_ws.npz", r"w of shape \[1, 5, 6\] \(float64\) does not fit this generator, which takes \[N, 4, 6\]"),
        ("flat.npz", r"w of shape \[4, 6\]"),
        ("ints.npz", r"\(int32\) does not fit"),
        ("nan.npz", "holds NaN or Inf"),
        ("other.npz", r"has no array 'w' \(it holds \['ws'\]\)"),
        ("bare.npy", "a bare .npy array"),
        ("text.npz", "is not an .npz file of ws"),
        ("missing.npz", "no such file"),
    ]:
        with pytest.raises(UserError, match=message):
            load_ws(str(tmp_path / name), G)


def test_mix_styles_takes_the_columns_ws_at_the_given_layers():
    rows = np.random.randn(3, 5, 4).astype(np.float32)
    cols = np.random.randn(2, 5, 4).astype(np.float32)
    mixed = mix_styles(rows, cols, [1, 3])
    assert mixed.shape == (3, 2, 5, 4)
    for i in range(3):
        for j in range(2):
            np.testing.assert_array_equal(mixed[i, j, [1, 3]], cols[j, [1, 3]])
            np.testing.assert_array_equal(mixed[i, j, [0, 2, 4]], rows[i, [0, 2, 4]])


def test_style_mixing_cells_sources_and_grid():
    G = small_generator()
    rows, cols, styles, psi = [3, 7], [7, 1, 4], [0, 1, 2], 0.6
    result = style_mixing(G, rows, cols, styles, truncation_psi=psi)
    # NVIDIA's files: one per cell and one per source seed.
    assert set(result.images) == {(r, c) for r in rows for c in cols} | {(s, s) for s in [1, 3, 4, 7]}
    ws = {s: map_latents(G, z_from_seeds([s], 6), truncation_psi=psi)[0] for s in [1, 3, 4, 7]}
    for s in [1, 3, 4, 7]:  # a source is the seed's own (truncated) image
        np.testing.assert_array_equal(result.images[(s, s)], generate_images(G, [s], psi)[0])
    w = ws[3].copy()
    w[styles] = ws[1][styles]  # row 3 with the coarse styles of column 1
    np.testing.assert_array_equal(result.images[(3, 1)], synthesize(G, w[None])[0])
    assert not np.array_equal(result.images[(3, 1)], result.images[(3, 3)])
    g = result.grid
    assert g.shape == (3 * 8, 4 * 8, 3)
    assert not g[:8, :8].any()  # the corner is black
    np.testing.assert_array_equal(g[:8, 16:24], result.images[(1, 1)])  # top: column sources
    np.testing.assert_array_equal(g[16:24, :8], result.images[(7, 7)])  # left: row sources
    np.testing.assert_array_equal(g[8:16, 16:24], result.images[(3, 1)])
    np.testing.assert_array_equal(g[16:24, 8:16], result.images[(7, 7)])  # row 7 x column 7


def test_lerp_and_slerp():
    rng = np.random.RandomState(1)
    a, b = rng.randn(2, 16)
    t = np.linspace(0, 1, 11)
    np.testing.assert_allclose(lerp(a, b, t)[[0, -1]], [a, b], rtol=1e-6)
    np.testing.assert_allclose(lerp(a, b, 0.25), 0.75 * a + 0.25 * b, rtol=1e-6)
    s = slerp(a, b, t)
    np.testing.assert_allclose(s[[0, -1]], [a, b], rtol=1e-5, atol=1e-6)
    b_same_norm = b * np.linalg.norm(a) / np.linalg.norm(b)
    s = slerp(a, b_same_norm, t)
    np.testing.assert_allclose(np.linalg.norm(s, axis=1), np.linalg.norm(a), rtol=1e-5)  # on the sphere
    omega = np.arccos(a @ b_same_norm / np.linalg.norm(a) ** 2)
    angle = np.arccos(np.clip(s @ a / (np.linalg.norm(s, axis=1) * np.linalg.norm(a)), -1, 1))
    np.testing.assert_allclose(angle, t * omega, atol=1e-3)  # constant angular speed
    # Lerp would cut the chord: its midpoint is shorter by cos(omega / 2).
    np.testing.assert_allclose(np.linalg.norm(lerp(a, b_same_norm, 0.5)), np.linalg.norm(a) * np.cos(omega / 2),
                               rtol=1e-5)
    np.testing.assert_allclose(slerp(a, 2 * a, t), lerp(a, 2 * a, t), rtol=1e-6)  # parallel: no division by 0


def test_walk_positions():
    index, t = walk_positions(3, 4, loop=False)
    assert len(t) == 9 and list(index) == [0, 0, 0, 0, 1, 1, 1, 1, 1]
    np.testing.assert_allclose(t, [0, 0.25, 0.5, 0.75, 0, 0.25, 0.5, 0.75, 1.0])
    index, t = walk_positions(3, 2, loop=True)
    assert list(index) == [0, 0, 1, 1, 2, 2] and list(t) == [0, 0.5] * 3
    with pytest.raises(UserError, match="at least two seeds"):
        walk_positions(1, 4, loop=False)
    with pytest.raises(UserError, match="--frames must be >= 1"):
        walk_positions(2, 0, loop=False)


@pytest.mark.parametrize("space", ["w", "z"])
def test_interpolation_starts_passes_and_ends_on_the_seeds(space):
    G = small_generator()
    seeds = [2, 5, 9]
    frames = interpolation(G, seeds, frames=4, space=space, truncation_psi=0.8)
    assert frames.shape == (9, 8, 8, 3)
    keys = generate_images(G, seeds, 0.8)
    for k, f in zip(range(3), [0, 4, 8]):
        np.testing.assert_array_equal(frames[f], keys[k])
    z = z_from_seeds(seeds[:2], 6)
    if space == "w":
        middle = map_latents(G, z, truncation_psi=0.8).mean(axis=0, keepdims=True)
    else:
        middle = map_latents(G, slerp(z[0], z[1], np.array([0.5])), truncation_psi=0.8)
    np.testing.assert_array_equal(frames[2], synthesize(G, middle)[0])
    looped = interpolation(G, seeds, frames=4, space=space, loop=True, truncation_psi=0.8)
    assert len(looped) == 12
    np.testing.assert_array_equal(looped[:9], frames)


def test_interpolation_across_classes():
    G = small_generator(c_dim=3)
    frames = interpolation(G, [1, 2], frames=2, space="z", classes=[0, 2])
    c = class_labels(G, [0, 2])
    np.testing.assert_array_equal(frames[0], synthesize(G, map_latents(G, z_from_seeds([1], 6), c[:1]))[0])
    np.testing.assert_array_equal(frames[2], synthesize(G, map_latents(G, z_from_seeds([2], 6), c[1:]))[0])
    z_mid = slerp(*z_from_seeds([1, 2], 6), np.array([0.5]))
    np.testing.assert_array_equal(frames[1], synthesize(G, map_latents(G, z_mid, np.array([[0.5, 0, 0.5]],
                                                                                          np.float32)))[0])
    one_class = interpolation(G, [1, 2], frames=2, space="w", classes=[1])
    np.testing.assert_array_equal(one_class[2], generate_images(G, [2], class_idx=1)[0])
    with pytest.raises(UserError, match="one class for all seeds or one per seed"):
        interpolation(G, [1, 2, 3], frames=2, classes=[0, 1])
    with pytest.raises(UserError, match=r"--class_idx must be in \[0, 2\]"):
        interpolation(G, [1, 2], frames=2, classes=[3])


def test_gif_round_trip(tmp_path):
    colours = np.array([[0, 0, 0], [255, 0, 0], [0, 255, 0], [0, 0, 255]], np.uint8)
    frames = [np.broadcast_to(colours[(np.arange(6)[:, None] + k) % 4], (6, 6, 3)).copy() for k in range(5)]
    path = str(tmp_path / "walk.gif")
    save_animation(path, iter(frames), fps=25)
    with Image.open(path) as gif:
        assert gif.n_frames == 5 and gif.info["duration"] == 40 and gif.info["loop"] == 0
        for k in range(5):
            gif.seek(k)
            np.testing.assert_array_equal(np.asarray(gif.convert("RGB")), frames[k])  # 4 colours: no dithering
    assert os.listdir(tmp_path) == ["walk.gif"]  # no temporaries left
    with pytest.raises(ValueError, match="all be uint8 of shape"):
        save_animation(str(tmp_path / "bad.gif"), [frames[0], frames[0][:4]])
    with pytest.raises(ValueError, match="expected .mp4 or .gif"):
        save_animation(str(tmp_path / "x.avi"), frames)
    assert os.listdir(tmp_path) == ["walk.gif"]


def test_mp4_writer(tmp_path):
    pytest.importorskip("imageio_ffmpeg", reason="MP4 needs the optional imageio-ffmpeg package")
    import imageio_ffmpeg

    frames = [np.full((6, 10, 3), 40 * k, np.uint8) for k in range(6)]
    path = str(tmp_path / "walk.mp4")
    save_animation(path, frames, fps=12)
    reader = imageio_ffmpeg.read_frames(path)
    meta = next(reader)
    decoded = [np.frombuffer(f, np.uint8).reshape(6, 10, 3) for f in reader]
    assert meta["size"] == (10, 6) and len(decoded) == 6
    for k, f in enumerate(decoded):  # H.264 is lossy, but flat grey frames come back within a few levels
        assert abs(float(f.mean()) - 40 * k) < 4
