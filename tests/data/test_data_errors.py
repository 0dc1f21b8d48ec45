"""Bad datasets give one-line UserErrors that name the problem and the file."""

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tf_stylegan2.data import open_dataset
from tf_stylegan2.fileio import UserError

CACHED, STREAMED = 1 << 30, 0


def error_of(path, max_cache_bytes=CACHED) -> str:
    with pytest.raises(UserError) as e:
        open_dataset(path, max_cache_bytes=max_cache_bytes)
    message = str(e.value)
    assert "\n" not in message
    return message


def rgb(size, value=0):
    return np.full([size[1], size[0], 3], value, np.uint8)


def test_missing_empty_and_not_a_dataset(tmp_path, write_files):
    assert "does not exist" in error_of(str(tmp_path / "nowhere"))
    (tmp_path / "empty").mkdir()
    assert "contains no images" in error_of(str(tmp_path / "empty"))
    only_text = write_files(str(tmp_path / "text"), {"notes.txt": b"hello", "dataset.json": {"labels": None}})
    assert "contains no images" in error_of(only_text)
    assert "contains no images" in error_of(write_files(str(tmp_path / "z"), {"a.txt": b"x"}, as_zip=True))
    (tmp_path / "file.png").write_bytes(b"not a zip")
    assert "neither a folder nor a zip" in error_of(str(tmp_path / "file.png"))
    assert "unknown dataset builtin:nope" in error_of("builtin:nope")


@pytest.mark.parametrize("cache", [CACHED, STREAMED])
def test_mixed_sizes_non_square_and_non_power_of_two(tmp_path, write_files, cache):
    mixed = write_files(str(tmp_path / "mixed"), {"a.png": rgb((8, 8)), "b.png": rgb((16, 16))})
    message = error_of(mixed, cache)
    assert "mixed image sizes" in message and "b.png is 16x16" in message
    assert "must be square" in error_of(write_files(str(tmp_path / "ns"), {"a.png": rgb((8, 4))}), cache)
    assert "power-of-two" in error_of(write_files(str(tmp_path / "np2"), {"a.png": rgb((12, 12))}), cache)
    gray = write_files(str(tmp_path / "mc"), {"a.png": rgb((8, 8)), "b.png": np.zeros([8, 8], np.uint8)})
    assert "mixed channel counts" in error_of(gray, cache) and "b.png" in error_of(gray, cache)
    rgba = write_files(str(tmp_path / "rgba"), {"a.png": Image.new("RGBA", (8, 8))})
    assert "a.png has an alpha channel" in error_of(rgba, cache)
    palette = write_files(str(tmp_path / "p"), {"a.png": Image.new("P", (8, 8))})
    assert "a.png is not RGB or grayscale (mode P)" in error_of(palette, cache)


@pytest.mark.parametrize("as_zip", [False, True])
def test_corrupt_files_are_named(tmp_path, write_files, png_bytes, as_zip):
    good = png_bytes(rgb((8, 8), 7))
    garbage = write_files(str(tmp_path / "g"), {"a.png": good, "b.png": b"\x89PNG garbage"}, as_zip)
    for cache in (CACHED, STREAMED):  # an unreadable header fails at open either way
        message = error_of(garbage, cache)
        assert "b.png: corrupt or unreadable image" in message
    noise = np.random.RandomState(0).randint(0, 256, [8, 8, 3]).astype(np.uint8)
    broken = bytearray(png_bytes(noise))
    at = broken.find(b"IDAT") + 20
    broken[at : at + 8] = bytes(8)  # damaged pixel data behind an intact header
    truncated = write_files(str(tmp_path / "t"), {"a.png": good, "c.png": bytes(broken)}, as_zip)
    assert "c.png: corrupt or unreadable image" in error_of(truncated)  # decoded at open when cached
    # Streamed, the header passes at open and the pixels fail while training: still naming the file.
    dataset = open_dataset(truncated, max_cache_bytes=STREAMED)
    with pytest.raises(tf.errors.OpError, match="c.png: corrupt or unreadable image"):
        next(iter(dataset.tf_dataset(2, use_labels=False, mirror=False, seed=0, shuffle=False)))


def test_labels_that_do_not_match_the_files(tmp_path, write_files):
    images = {"a.png": rgb((4, 4)), "b.png": rgb((4, 4))}

    def labels_error(meta) -> str:
        folder = str(tmp_path / f"l{len(list(tmp_path.iterdir()))}")
        return error_of(write_files(folder, {**images, "dataset.json": meta}))

    assert "has no label for b.png" in labels_error({"labels": [["a.png", 0]]})
    assert "labels c.png, which is not an image" in labels_error({"labels": [["a.png", 0], ["b.png", 1], ["c.png", 1]]})
    assert "bad label entry" in labels_error({"labels": [["a.png", 0], ["b.png"]]})
    assert "negative class label" in labels_error({"labels": [["a.png", 0], ["b.png", -1]]})
    assert "all be class indices" in labels_error({"labels": [["a.png", 0], ["b.png", [1, 2]]]})
    assert 'expected an object with a "labels" entry' in labels_error({"classes": []})
    assert "not valid JSON" in error_of(write_files(str(tmp_path / "bad"), {**images, "dataset.json": b"{oops"}))
    unlabelled = open_dataset(write_files(str(tmp_path / "none"), {**images, "dataset.json": {"labels": None}}))
    assert unlabelled.info.c_dim == 0
    with pytest.raises(UserError, match="has no labels"):
        unlabelled.tf_dataset(2, use_labels=True, mirror=False, seed=0)
    with pytest.raises(UserError, match="batch_size must be >= 1"):
        unlabelled.tf_dataset(0, use_labels=False, mirror=False, seed=0)
