"""Writers of small image datasets on disk (folder or zip, optional dataset.json) for the data tests."""

import io
import json
import os
import zipfile

import numpy as np
import pytest
from PIL import Image


def png_bytes(image) -> bytes:
    buffer = io.BytesIO()
    (image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image))).save(buffer, format="PNG")
    return buffer.getvalue()


def write_files(root: str, files: dict, as_zip: bool = False) -> str:
    """Writes {relative name: bytes | PIL image | uint8 array | json-able dict} as a folder or zip."""
    def payload(value):
        if isinstance(value, bytes):
            return value
        if isinstance(value, dict):
            return json.dumps(value).encode()
        return png_bytes(value)

    if as_zip:
        path = root + ".zip"
        with zipfile.ZipFile(path, "w") as z:
            for name, value in files.items():
                z.writestr(name, payload(value))
        return path
    for name, value in files.items():
        target = os.path.join(root, name)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "wb") as f:
            f.write(payload(value))
    return root


@pytest.fixture
def random_images():
    """``fn(n, res, channels) -> uint8 [n, res, res, channels]`` (left-right asymmetric noise)."""
    def make(n, res=8, channels=3, seed=1):
        return np.random.RandomState(seed).randint(0, 256, size=[n, res, res, channels]).astype(np.uint8)

    return make


@pytest.fixture
def labelled_dataset(tmp_path, random_images):
    """``fn(as_zip) -> (path, images, classes)``: 10 RGB 8x8 images in two subfolders, labels listed
    in dataset.json in reverse order (so labels must be matched by name, not by position)."""
    images = random_images(10)
    classes = np.array([3, 0, 1, 2, 3, 1, 0, 2, 1, 3])
    names = [f"{'a' if i < 5 else 'b'}/img{i:02d}.png" for i in range(10)]

    def make(as_zip=False):
        files = {n: images[i] for i, n in enumerate(names)}
        files["dataset.json"] = {"labels": [[n, int(classes[i])] for i, n in reversed(list(enumerate(names)))]}
        return write_files(str(tmp_path / "ds"), files, as_zip), images, classes

    return make


@pytest.fixture(name="write_files")
def _write_files():
    return write_files


@pytest.fixture(name="png_bytes")
def _png_bytes():
    return png_bytes
