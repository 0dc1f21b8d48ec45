"""Datasets written to disk for the metric tests."""

import io
import zipfile

import numpy as np
from PIL import Image


def write_zip(stem, images: np.ndarray) -> str:
    """A stylegan2-ada style zip of PNGs ``img00000.png``...; returns its path."""
    path = f"{stem}.zip"
    with zipfile.ZipFile(path, "w") as z:
        for i, image in enumerate(images):
            buffer = io.BytesIO()
            Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(buffer, format="PNG")
            z.writestr(f"img{i:05d}.png", buffer.getvalue())
    return path
