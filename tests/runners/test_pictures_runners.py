"""runners.style_mixing, runners.interpolate and runners.generate's new modes end to end, from
each generator form; bad input is one line, exit 2, nothing written."""

import os

import numpy as np
import pytest
from PIL import Image

from tf_stylegan2.pictures import interpolation, style_mixing
from tf_stylegan2.sampling import generate_images, map_latents, synthesize, z_from_seeds

from pictures_helpers import assert_one_line_error, fake_run_dir, run, tiny_generator


@pytest.fixture(scope="module")
def networks(tmp_path_factory):
    root = tmp_path_factory.mktemp("networks")
    G = tiny_generator()
    G.save(root / "G.keras")
    run_dir = fake_run_dir(root / "run", G)
    return G, {"keras": str(root / "G.keras"), "run": run_dir,
               "checkpoint": os.path.join(run_dir, "checkpoints", "ckpt-000000016")}


def png(path) -> np.ndarray:
    return np.asarray(Image.open(path))


def test_style_mixing_from_a_run_directory(networks, tmp_path):
    G, files = networks
    r = run("style_mixing", f"--network={files['run']}", "--rows=1,2", "--cols=3,4,5", "--styles=0-2", "--trunc=0.7",
            f"--outdir={tmp_path}")
    assert r.returncode == 0, r.stderr
    expected = style_mixing(G, [1, 2], [3, 4, 5], [0, 1, 2], 0.7)
    np.testing.assert_array_equal(png(tmp_path / "grid.png"), expected.grid)
    assert sorted(os.listdir(tmp_path)) == sorted(["grid.png"] + [f"{a}-{b}.png" for a, b in expected.images])
    np.testing.assert_array_equal(png(tmp_path / "2-4.png"), expected.images[(2, 4)])


def test_interpolate_from_a_checkpoint(networks, tmp_path):
    G, files = networks
    r = run("interpolate", f"--network={files['checkpoint']}", "--seeds=1,2,3", "--frames=3", "--space=z", "--loop",
            "--grid", f"--outdir={tmp_path}")
    assert r.returncode == 0, r.stderr
    frames = interpolation(G, [1, 2, 3], 3, "z", loop=True)
    assert len(frames) == 9
    np.testing.assert_array_equal(png(tmp_path / "frames.png"), np.concatenate(
        [np.concatenate(list(frames[i : i + 3]), axis=1) for i in range(0, 9, 3)], axis=0))
    with Image.open(tmp_path / "interpolation.gif") as gif:  # Pillow's writer: MP4 needs imageio-ffmpeg
        assert gif.n_frames == 9


def test_generate_truncation_sweep_and_projected_w(networks, tmp_path):
    G, files = networks
    r = run("generate", f"--network={files['keras']}", "--seeds=3,4", "--trunc=1,0.5,0", f"--outdir={tmp_path / 'a'}")
    assert r.returncode == 0, r.stderr
    rows = [generate_images(G, [3, 4], psi) for psi in (1, 0.5, 0)]
    np.testing.assert_array_equal(png(tmp_path / "a" / "grid.png"),
                                  np.concatenate([np.concatenate(list(row), axis=1) for row in rows], axis=0))
    np.testing.assert_array_equal(png(tmp_path / "a" / "seed0004-trunc0.5.png"), rows[1][1])
    np.testing.assert_array_equal(rows[2][0], rows[2][1])  # psi 0: every seed is the mean w
    ws = map_latents(G, z_from_seeds([7, 8], 6))
    ws[1, 3:] = ws[0, 3:]  # any ws, not only broadcast ones
    np.savez(tmp_path / "w.npz", w=ws)
    r = run("generate", f"--network={files['keras']}", f"--projected_w={tmp_path / 'w.npz'}",
            f"--outdir={tmp_path / 'b'}")
    assert r.returncode == 0, r.stderr
    assert sorted(os.listdir(tmp_path / "b")) == ["proj00.png", "proj01.png"]
    np.testing.assert_array_equal(png(tmp_path / "b" / "proj01.png"), synthesize(G, ws[1:])[0])


def test_generate_conditional_gives_a_row_per_class(tmp_path):
    G = tiny_generator(c_dim=3)
    G.save(tmp_path / "G.keras")
    r = run("generate", f"--network={tmp_path / 'G.keras'}", "--seeds=3,4", f"--outdir={tmp_path / 'a'}")
    assert r.returncode == 0, r.stderr
    rows = [generate_images(G, [3, 4], 1.0, class_idx=k) for k in range(3)]
    np.testing.assert_array_equal(png(tmp_path / "a" / "grid.png"),
                                  np.concatenate([np.concatenate(list(row), axis=1) for row in rows], axis=0))
    np.testing.assert_array_equal(png(tmp_path / "a" / "seed0004-class2.png"), rows[2][1])
    assert not np.array_equal(rows[0], rows[1])  # the label changes the images


def test_bad_input_is_one_line_and_writes_nothing(networks, tmp_path):
    # One case per kind of check; the library tests hold the variants (tests/tf_stylegan2/).
    G, files = networks
    out = tmp_path / "out"
    np.savez(tmp_path / "w_dim.npz", w=np.zeros([1, G.num_ws, 5], np.float32))
    (tmp_path / "text.png").write_text("not an image")
    network = f"--network={files['keras']}"
    vgg16 = f"--vgg16={tmp_path / 'vgg16.pth'}"  # never read: the target is checked first
    for runner, args, message in [
        ("style_mixing", ["--rows=1,a", "--cols=2"], "bad seed list '1,a'"),
        ("style_mixing", ["--rows=1", "--cols=2", "--styles=2-4"], "names layer 4, but this generator has 4 ws"),
        ("generate", [f"--projected_w={tmp_path / 'w_dim.npz'}"], "w of shape [1, 4, 5] (float32) does not fit"),
        ("projector", [f"--target={tmp_path / 'missing.png'}", vgg16], "no such target image"),
        ("projector", [f"--target={tmp_path / 'text.png'}", vgg16], "text.png is not a readable image"),
    ]:
        r = run(runner, network, *args, f"--outdir={out}")
        assert_one_line_error(r, runner, message)
        assert not out.exists()
