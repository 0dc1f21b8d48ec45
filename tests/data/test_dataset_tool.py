"""tf_stylegan2.data.convert and runners/dataset_tool.py: exact pixels after each conversion,
labels, explicit problems, atomic output."""

import json
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from PIL import Image

from tf_stylegan2.data import open_dataset
from tf_stylegan2.data.convert import ConvertOptions, convert_dataset
from tf_stylegan2.fileio import UserError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def convert(source, dest, log=None, **options):
    messages = []
    report = convert_dataset(str(source), str(dest), ConvertOptions(**options), log=messages.append)
    return report, messages


def failure(source, dest, **options) -> str:
    with pytest.raises(UserError) as e:
        convert(source, dest, **options)
    assert "\n" not in str(e.value)
    assert not os.path.exists(dest)  # nothing written
    assert not [n for n in os.listdir(os.path.dirname(str(dest))) if n.startswith(".")]  # no temporaries
    return str(e.value)


def pixels(path):
    d = open_dataset(str(path))
    return d.images(np.arange(len(d))), d


def test_crops_exact_pixels(tmp_path, write_files):
    wide = np.arange(4 * 8 * 3, dtype=np.uint8).reshape(4, 8, 3)  # 8 wide, 4 high
    tall = np.arange(8 * 4 * 3, dtype=np.uint8).reshape(8, 4, 3) + 100
    src = write_files(str(tmp_path / "src"), {"a.png": wide, "b.png": tall})
    convert(src, tmp_path / "crop", resolution=4, transform="center-crop")
    out, _ = pixels(tmp_path / "crop")
    np.testing.assert_array_equal(out[0], wide[:, 2:6])  # centred 4x4 square, no resampling needed
    np.testing.assert_array_equal(out[1], tall[2:6, :])
    convert(src, tmp_path / "wide", resolution=8, transform="center-crop-wide", convert=frozenset({"size"}))
    out, _ = pixels(tmp_path / "wide")
    np.testing.assert_array_equal(out[0, 2:6], wide)  # letterboxed: full width, black bars
    np.testing.assert_array_equal(out[0, :2], 0)
    np.testing.assert_array_equal(out[0, 6:], 0)


def test_resize_keeps_flat_colours_and_none_keeps_pixels(tmp_path, write_files, random_images):
    flat = np.zeros([12, 20, 3], np.uint8) + np.array([10, 200, 90], np.uint8)
    src = write_files(str(tmp_path / "flat"), {"f.png": flat})
    convert(src, tmp_path / "f8", resolution=8)
    np.testing.assert_array_equal(pixels(tmp_path / "f8")[0][0], np.broadcast_to(flat[0, 0], (8, 8, 3)))
    images = random_images(3, res=16)
    src = write_files(str(tmp_path / "exact"), {f"{i}.png": im for i, im in enumerate(images)})
    report, _ = convert(src, tmp_path / "same.zip", transform="none")
    assert (report.num_images, report.resolution, report.channels, report.c_dim) == (3, 16, 3, 0)
    np.testing.assert_array_equal(pixels(tmp_path / "same.zip")[0], images)
    with zipfile.ZipFile(tmp_path / "same.zip") as z:  # stylegan2-ada's layout
        assert sorted(z.namelist()) == ["00000/img00000000.png", "00000/img00000001.png", "00000/img00000002.png",
                                        "dataset.json"]
        assert json.loads(z.read("dataset.json")) == {"labels": None}


def test_grayscale_rgba_16bit_and_palette(tmp_path, write_files):
    gray = np.arange(16, dtype=np.uint8).reshape(4, 4) * 16
    rgba = np.zeros([4, 4, 4], np.uint8) + np.array([200, 100, 0, 128], np.uint8)
    deep = (np.arange(16, dtype=np.uint16).reshape(4, 4) * 4096 + 4095).astype(np.uint16)
    palette = Image.fromarray(np.full([4, 4, 3], [0, 128, 255], np.uint8)).convert("P", palette=Image.ADAPTIVE)
    for name, image, kind in [("g", gray, "grayscale"), ("a", rgba, "alpha"),
                              ("p", palette, "mode")]:
        src = write_files(str(tmp_path / name), {"ok.png": np.zeros([4, 4, 3], np.uint8), f"{name}.png": image})
        message = failure(src, tmp_path / f"{name}_out", transform="none")
        assert f"{name}.png:" in message and f"--convert={kind}" in message
    src = write_files(str(tmp_path / "all"), {"g.png": gray, "a.png": rgba, "d.png": Image.fromarray(deep),
                                              "p.png": palette})
    kinds = frozenset({"grayscale", "alpha", "mode"})
    report, messages = convert(src, tmp_path / "black", transform="none", convert=kinds)
    out, _ = pixels(tmp_path / "black")  # sorted: a, d, g, p
    a = np.float64(128) / 255
    np.testing.assert_array_equal(out[0], np.broadcast_to(np.rint(np.array([200, 100, 0]) * a), (4, 4, 3)))
    np.testing.assert_array_equal(out[1], np.repeat(np.rint(deep / 257.0)[..., None], 3, axis=-1))
    np.testing.assert_array_equal(out[2], np.repeat(gray[..., None], 3, axis=-1))
    np.testing.assert_array_equal(out[3], np.broadcast_to([0, 128, 255], (4, 4, 3)))
    assert {k: len(v) for k, v in report.converted.items()} == {"grayscale": 2, "alpha": 1, "mode": 1, "size": 0}
    assert sum("converted (alpha)" in m and "a.png" in m for m in messages) == 1  # each conversion is reported
    convert(src, tmp_path / "white", transform="none", convert=kinds, background="white")
    white = np.rint(np.array([200, 100, 0]) * a + 255 * (1 - a))
    np.testing.assert_array_equal(pixels(tmp_path / "white")[0][0], np.broadcast_to(white, (4, 4, 3)))
    convert(src, tmp_path / "one", transform="none", channels=1, convert=frozenset({"alpha", "mode"}))
    out1, d1 = pixels(tmp_path / "one")
    assert d1.info.channels == 1
    np.testing.assert_array_equal(out1[2, ..., 0], gray)


def test_size_problems(tmp_path, write_files):
    files = {"big.png": np.zeros([8, 8, 3], np.uint8), "odd.png": np.zeros([6, 8, 3], np.uint8)}
    src = write_files(str(tmp_path / "src"), files)
    assert "odd.png: 8x6, not 8x8" in failure(src, tmp_path / "o1", transform="none")
    report, _ = convert(src, tmp_path / "o2", transform="none", convert=frozenset({"size"}))
    assert report.converted["size"] == [os.path.join(src, "odd.png")] and report.resolution == 8
    assert "smaller than 16" in failure(src, tmp_path / "o3", resolution=16)
    assert "transform center-crop needs a resolution" in failure(src, tmp_path / "o4")


def test_corrupt_images_fail_or_are_skipped_and_reported(tmp_path, write_files):
    src = write_files(str(tmp_path / "src"), {"a.png": np.zeros([4, 4, 3], np.uint8), "b.jpg": b"\xff\xd8 not a jpeg"})
    message = failure(src, tmp_path / "out", transform="none")
    assert "b.jpg: corrupt or unreadable image" in message and "--skip_corrupt" in message
    report, messages = convert(src, tmp_path / "out", transform="none", skip_corrupt=True)
    assert report.num_images == 1 and report.skipped == [os.path.join(src, "b.jpg")]
    assert any("skipped corrupt" in m and "b.jpg" in m for m in messages)
    only_bad = write_files(str(tmp_path / "bad"), {"b.png": b"junk"})
    assert "no image could be converted" in failure(only_bad, tmp_path / "none", transform="none", skip_corrupt=True)


def test_atomic_output_and_overwrite(tmp_path, write_files):
    src = write_files(str(tmp_path / "src"), {"a.png": np.zeros([4, 4, 3], np.uint8)})
    bad = write_files(str(tmp_path / "bad"), {"a.png": np.zeros([4, 4, 3], np.uint8), "z.png": b"junk"})
    dest = tmp_path / "out"
    convert(src, dest, transform="none")
    before = sorted(os.listdir(dest))
    with pytest.raises(UserError, match="already exists"):
        convert(src, dest, transform="none")
    with pytest.raises(UserError, match="corrupt"):  # fails after writing a.png: the old dataset survives
        convert_dataset(bad, str(dest), ConvertOptions(transform="none"), overwrite=True, log=lambda m: None)
    assert sorted(os.listdir(dest)) == before
    assert sorted(os.listdir(tmp_path)) == ["bad", "out", "src"]
    convert_dataset(src, str(dest), ConvertOptions(transform="none", labels="none"), overwrite=True, log=lambda m: None)
    with pytest.raises(UserError, match="must not be the source or inside it"):
        convert(src, tmp_path / "src" / "inner", transform="none")


def test_labels_from_json_subfolders_and_builtin(tmp_path, labelled_dataset, write_files):
    folder, images, classes = labelled_dataset()
    report, _ = convert(folder, tmp_path / "json.zip", transform="none")
    out, d = pixels(tmp_path / "json.zip")
    np.testing.assert_array_equal(out, images)
    np.testing.assert_array_equal(d.labels.argmax(axis=1), classes)
    assert report.c_dim == 4
    convert(folder, tmp_path / "sub", transform="none", labels="subfolders")  # a/ -> 0, b/ -> 1
    _, d = pixels(tmp_path / "sub")
    np.testing.assert_array_equal(d.labels.argmax(axis=1), [0] * 5 + [1] * 5)
    with open(tmp_path / "sub" / "dataset.json") as f:
        assert json.load(f)["class_names"] == ["a", "b"]
    files = {"x.png": images[0], "y.png": images[1], "dataset.json": {"labels": [["x.png", 1]]}}
    mismatched = write_files(str(tmp_path / "mism"), files)
    assert "has no label for y.png" in failure(mismatched, tmp_path / "m_out", transform="none")
    flat = write_files(str(tmp_path / "flat"), {"top.png": images[0]})
    message = failure(flat, tmp_path / "f_out", transform="none", labels="subfolders")
    assert "top.png is not in a class subfolder" in message
    assert "has no labels in dataset.json" in failure(flat, tmp_path / "j_out", transform="none", labels="json")
    # The embedded dataset exports exactly, with its class names.
    report, _ = convert("builtin:shapes16", tmp_path / "shapes16.zip", transform="none", max_images=50)
    out, d = pixels(tmp_path / "shapes16.zip")
    builtin = open_dataset("builtin:shapes16")
    np.testing.assert_array_equal(out, builtin.images(np.arange(50)))
    np.testing.assert_array_equal(d.labels, builtin.labels[:50])


def run_tool(*args):
    env = dict(os.environ, PYTHONPATH=ROOT)
    return subprocess.run([sys.executable, "-m", "runners.dataset_tool", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def test_runner_exit_codes_and_grid(tmp_path, write_files):
    files = {"x/a.png": np.zeros([4, 4], np.uint8), "y/b.png": np.zeros([4, 4, 3], np.uint8)}
    src = write_files(str(tmp_path / "src"), files)
    bad = run_tool(f"--source={src}", f"--dest={tmp_path / 'out.zip'}", "--transform=none")
    assert bad.returncode == 2 and not os.path.exists(tmp_path / "out.zip")
    assert bad.stderr.strip().count("\n") == 0 and "a.png: grayscale image (mode L)" in bad.stderr
    grid = tmp_path / "grid.png"
    ok = run_tool(f"--source={src}", f"--dest={tmp_path / 'out.zip'}", "--resolution=4", "--convert=all",
                  "--labels=subfolders", f"--grid={grid}")
    assert ok.returncode == 0, ok.stderr
    assert "2 images 4x4x3, c_dim 2; converted: grayscale 1" in ok.stdout
    assert np.asarray(Image.open(grid)).shape == (2 * 4, 8 * 4, 3)  # one row of 8 cells per class
