"""Atomic writes, images, seeds and sampling."""

import os

import numpy as np
import pytest
from PIL import Image

from tf_stylegan2 import Generator, GeneratorConfig, MappingConfig
from tf_stylegan2.fileio import UserError, atomic_path, write_text
from tf_stylegan2.images import grid, save_png, to_uint8
from tf_stylegan2.sampling import generate_images, labels, parse_seeds, z_from_seeds


def test_atomic_path_replaces_files_and_directories(tmp_path):
    target = tmp_path / "out.txt"
    write_text(str(target), "one")
    write_text(str(target), "two")
    assert target.read_text() == "two"
    d = tmp_path / "export"
    for content in ["a", "b"]:
        with atomic_path(str(d)) as tmp:
            os.makedirs(tmp)
            (open(os.path.join(tmp, "f"), "w")).write(content)
    assert (d / "f").read_text() == "b"
    assert sorted(os.listdir(tmp_path)) == ["export", "out.txt"]  # no temporaries left behind


def test_atomic_path_keeps_old_version_on_failure(tmp_path):
    target = tmp_path / "keep.txt"
    write_text(str(target), "good")
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_path(str(target)) as tmp:
            open(tmp, "w").write("half")
            raise RuntimeError("boom")
    assert target.read_text() == "good"
    assert os.listdir(tmp_path) == ["keep.txt"]
    with pytest.raises(UserError, match="already exists"):
        with atomic_path(str(target), overwrite=False):
            pass


def test_to_uint8_and_grid():
    np.testing.assert_array_equal(to_uint8(np.array([-1.0, -0.999, 0.0, 1.0, 1.5, -7.0])), [0, 0, 128, 255, 255, 0])
    imgs = np.arange(5)[:, None, None, None] * np.ones([5, 2, 3, 1], np.uint8)
    g = grid(imgs, cols=2)
    assert g.shape == (6, 6, 1)
    assert g[0, 0, 0] == 0 and g[0, 3, 0] == 1 and g[2, 0, 0] == 2 and g[4, 0, 0] == 4
    assert g[4, 3, 0] == 0  # the empty sixth cell is black


def test_save_png_round_trip(tmp_path):
    img = np.random.randint(0, 256, [7, 5, 3], dtype=np.uint8)
    save_png(str(tmp_path / "a.png"), img)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "a.png")), img)
    gray = img[..., :1]
    save_png(str(tmp_path / "g.png"), gray)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "g.png")), gray[..., 0])
    with pytest.raises(ValueError, match="uint8"):
        save_png(str(tmp_path / "bad.png"), img.astype(np.float32))


def test_seeds_follow_nvidia_rule():
    assert parse_seeds("0-3,7, 10-11") == [0, 1, 2, 3, 7, 10, 11]
    for bad in ["", "a", "3-1", "-1", "1,,2"]:
        with pytest.raises(UserError, match="seed"):
            parse_seeds(bad)
    z = z_from_seeds([5, 9], 4)
    np.testing.assert_array_equal(z[1], np.random.RandomState(9).randn(4).astype(np.float32))


def test_generate_images_deterministic_and_labelled():
    g = Generator(GeneratorConfig(img_resolution=8, z_dim=4, w_dim=4, c_dim=3, channel_base=32, channel_max=8,
                                  mapping=MappingConfig(num_layers=1)))
    a = generate_images(g, [1, 2, 3], class_idx=2, batch_size=2)
    b = generate_images(g, [3], class_idx=2)
    assert a.shape == (3, 8, 8, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a[2], b[0])
    np.testing.assert_array_equal(labels(g.c_dim, 1, 2), [[0, 1, 0], [0, 1, 0]])
    with pytest.raises(UserError, match=r"--class_idx must be in \[0, 2\]"):
        generate_images(g, [1])
