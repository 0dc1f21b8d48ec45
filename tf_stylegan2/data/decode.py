"""Decoding images and checking that they fit a training dataset: square, one power-of-two size,
one pixel format (8-bit grayscale or RGB)."""

from __future__ import annotations

import io
from typing import Tuple

from PIL import Image

from layers.rules import valid_resolution
from tf_stylegan2.data.files import FileSource
from tf_stylegan2.fileio import UserError

MODE_CHANNELS = {"L": 1, "RGB": 3}  # the pixel formats a training dataset may hold


def decode_image(data: bytes, where: str) -> Image.Image:
    """Decodes a whole image (Pillow) as stored (no EXIF rotation, as in stylegan2-ada); a UserError
    naming the file if it is corrupt or truncated."""
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
        return image
    except Exception as e:  # Pillow raises many types (OSError, SyntaxError, ValueError, struct.error...)
        raise UserError(f"{where}: corrupt or unreadable image ({type(e).__name__}: {e})") from None


def read_header(source: FileSource, name: str) -> Tuple[str, Tuple[int, int]]:
    """(mode, (width, height)) from an image's header (Pillow reads no pixels for this)."""
    try:
        with source.open(name) as f, Image.open(f) as image:
            return image.mode, image.size
    except Exception as e:  # Pillow's many error types for unidentifiable or broken headers
        raise UserError(f"{source.where(name)}: corrupt or unreadable image ({type(e).__name__}: {e})") from None


def training_resolution(where: str, size: Tuple[int, int]) -> int:
    """The resolution of a training image of ``size`` (width, height): UserError unless square with
    a power-of-two side >= 4."""
    w, h = size
    if w != h or not valid_resolution(w):
        raise UserError(
            f"{where} is {w}x{h}: training images must be square with a power-of-two size >= 4 "
            "(convert with runners/dataset_tool.py)"
        )
    return w


def check_image(where: str, mode: str, size: Tuple[int, int], resolution: int, channels: int) -> None:
    """UserError unless the image has the dataset's pixel format and size."""
    if mode not in MODE_CHANNELS:
        kind = "has an alpha channel" if "A" in mode else "is not RGB or grayscale"
        raise UserError(f"{where} {kind} (mode {mode}); convert the dataset with runners/dataset_tool.py")
    if MODE_CHANNELS[mode] != channels:
        raise UserError(f"mixed channel counts: {where} has {MODE_CHANNELS[mode]}, other images {channels}")
    if size != (resolution, resolution):
        raise UserError(f"mixed image sizes: {where} is {size[0]}x{size[1]}, other images {resolution}x{resolution}")
