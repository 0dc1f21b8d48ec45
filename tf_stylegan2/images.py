"""Converting generator output to pictures, and the one PNG writer of the project."""

from __future__ import annotations

import io
import math
from typing import Optional

import numpy as np
from PIL import Image

from tf_stylegan2.fileio import atomic_path


def to_uint8(images, drange=(-1.0, 1.0)) -> np.ndarray:
    """Maps float images in ``drange`` to uint8 [0, 255] with rounding and clipping (NHWC or HWC)."""
    images = np.asarray(images, dtype=np.float32)
    lo, hi = drange
    scaled = (images - lo) * (255.0 / (hi - lo))
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def grid(images: np.ndarray, cols: Optional[int] = None) -> np.ndarray:
    """Tiles ``[N, H, W, C]`` images row by row into ``[rows * H, cols * W, C]`` (blank cells are black)."""
    images = np.asarray(images)
    n, h, w, c = images.shape
    cols = cols or max(1, int(math.ceil(math.sqrt(n))))
    rows = int(math.ceil(n / cols))
    canvas = np.zeros([rows * h, cols * w, c], dtype=images.dtype)
    for i, img in enumerate(images):
        r, k = divmod(i, cols)
        canvas[r * h : (r + 1) * h, k * w : (k + 1) * w] = img
    return canvas


def encode_png(image: np.ndarray, compress_level: int = 6) -> bytes:
    """PNG bytes of an ``[H, W, C]`` uint8 image (C = 1, 3 or 4); for writers that need bytes (zips)."""
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] not in (1, 3, 4):
        raise ValueError(f"PNG images must be [H, W, 1|3|4] uint8, got {image.dtype} {image.shape}")
    buffer = io.BytesIO()
    Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(
        buffer, format="PNG", compress_level=compress_level
    )
    return buffer.getvalue()


def save_png(path: str, image: np.ndarray) -> None:
    """Writes an ``[H, W, C]`` uint8 image (C = 1, 3 or 4) as PNG, atomically."""
    data = encode_png(image)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
