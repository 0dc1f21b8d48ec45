"""The rules that shape both networks, stated once: resolutions, architectures, channels per
resolution and which resolutions compute in low precision (stylegan2-ada-pytorch's
``training/networks.py``, ``SynthesisNetwork`` and ``Discriminator``)."""

from __future__ import annotations

from typing import Any, Dict, List, Optional

import numpy as np

ARCHITECTURES = ("orig", "skip", "resnet")


def check_architecture(architecture: str) -> None:
    if architecture not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {architecture!r}; expected one of {list(ARCHITECTURES)}")


def valid_resolution(resolution) -> bool:
    """True for a power of two >= 4: the blocks halve the image down to the 4x4 one."""
    return isinstance(resolution, (int, np.integer)) and resolution >= 4 and not resolution & (resolution - 1)


def check_resolution(resolution) -> None:
    """A one-line ValueError unless ``resolution`` is a power of two >= 4."""
    if not valid_resolution(resolution):
        raise ValueError(f"resolution must be a power of two >= 4, got {resolution!r}")


def resolution_log2(resolution: int) -> int:
    """log2 of a valid resolution (:func:`check_resolution`'s error otherwise)."""
    check_resolution(resolution)
    return int(resolution).bit_length() - 1


def block_resolutions(img_resolution: int) -> List[int]:
    """``[4, 8, ..., img_resolution]``: one block per resolution."""
    return [2**k for k in range(2, resolution_log2(img_resolution) + 1)]


def channels(resolution: int, channel_base: int, channel_max: int) -> int:
    """Feature maps at ``resolution``: ``min(channel_base // resolution, channel_max)``."""
    return min(channel_base // resolution, channel_max)


def channels_per_resolution(img_resolution: int, channel_base: int, channel_max: int) -> Dict[int, int]:
    """:func:`channels` at every block resolution; a ValueError when one would have none."""
    out = {r: channels(r, channel_base, channel_max) for r in block_resolutions(img_resolution)}
    if min(out.values()) < 1:
        raise ValueError(f"channel_base {channel_base} leaves no channels at {img_resolution}x{img_resolution}")
    return out


def block_policy(resolution: int, img_resolution: int, num_fp16_res: int, fp16_policy: Optional[str], policy: Any):
    """The dtype policy of the block at ``resolution``: ``fp16_policy`` (a mixed policy's name; None:
    no low precision) for the ``num_fp16_res`` highest resolutions, never below 8x8; ``policy`` for
    the others."""
    fp16_resolution = max(2 ** (resolution_log2(img_resolution) + 1 - num_fp16_res), 8)
    return fp16_policy if fp16_policy is not None and resolution >= fp16_resolution else policy


def block_policies(img_resolution: int, num_fp16_res: int, fp16_policy: Optional[str], policy: Any) -> Dict[int, Any]:
    """:func:`block_policy` at every block resolution."""
    resolutions = block_resolutions(img_resolution)
    return {r: block_policy(r, img_resolution, num_fp16_res, fp16_policy, policy) for r in resolutions}
