"""Converting generator output to pictures, and the one image writer of the project (PNG stills,
MP4 or GIF animations)."""

from __future__ import annotations

import importlib.util
import io
import itertools
import math
import os
from typing import Iterable, Iterator, Optional

import numpy as np
from PIL import Image

from tf_stylegan2.fileio import UserError, atomic_path


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


def animation_format() -> str:
    """The animation container :func:`save_animation` writes here: 'mp4' when imageio-ffmpeg (an
    H.264 encoder in a wheel) is installed, else 'gif' (Pillow, always present)."""
    return "mp4" if importlib.util.find_spec("imageio_ffmpeg") is not None else "gif"


def save_animation(path: str, frames: Iterable[np.ndarray], fps: float = 10.0) -> None:
    """Writes ``[H, W, 1|3]`` uint8 frames (all of one shape; any iterable, consumed once) as an
    animation, atomically. The format follows the extension: '.mp4' (H.264; needs imageio-ffmpeg;
    frames are streamed to the encoder) or '.gif' (Pillow; holds every frame in memory)."""
    ext = os.path.splitext(path)[1].lower()
    if ext not in (".gif", ".mp4"):
        raise ValueError(f"unknown animation format {ext!r} of {path}: expected .mp4 or .gif")
    frames = _checked_frames(frames)
    with atomic_path(path) as tmp:
        if ext == ".gif":
            images = [Image.fromarray(f) for f in frames]
            # GIF delays are whole centiseconds (browsers slow down anything under 2); loop=0 repeats.
            images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:], loop=0,
                           duration=max(20, int(round(1000 / fps))))
        else:
            _write_mp4(tmp, frames, fps)


def _checked_frames(frames: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
    shape = None
    for frame in frames:
        frame = np.asarray(frame)
        if shape is None:
            shape = frame.shape
            if frame.ndim != 3 or shape[-1] not in (1, 3):
                raise ValueError(f"animation frames must be [H, W, 1|3] uint8, got {frame.dtype} {shape}")
        if frame.dtype != np.uint8 or frame.shape != shape:
            raise ValueError(f"animation frames must all be uint8 of shape {shape}, got {frame.dtype} {frame.shape}")
        yield np.repeat(frame, 3, axis=-1) if shape[-1] == 1 else frame
    if shape is None:
        raise ValueError("an animation needs at least one frame")


def _write_mp4(path: str, frames: Iterator[np.ndarray], fps: float) -> None:
    try:
        import imageio_ffmpeg
    except ImportError:
        raise UserError("writing MP4 needs the imageio-ffmpeg package (pip install imageio-ffmpeg); "
                        "GIF needs nothing") from None
    first = next(frames)
    h, w = first.shape[:2]
    pad = [(0, h % 2), (0, w % 2), (0, 0)]  # yuv420p (what players expect of H.264) halves the chroma
    # As NVIDIA's projector video: H.264 at 16 Mbit/s, near lossless at these sizes.
    writer = imageio_ffmpeg.write_frames(path, (w + w % 2, h + h % 2), fps=fps, codec="libx264", bitrate="16M",
                                         pix_fmt_out="yuv420p", macro_block_size=1, output_params=["-f", "mp4"])
    writer.send(None)
    try:
        for frame in itertools.chain([first], frames):
            writer.send(np.ascontiguousarray(np.pad(frame, pad, mode="edge")))
    finally:
        writer.close()
