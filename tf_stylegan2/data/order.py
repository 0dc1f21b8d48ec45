"""The deterministic order of a training stream.

Position p lies in epoch e = p // N at offset p % N, and shows image ``perm(seed, e)[p % N]``,
where ``perm`` is a stateless pseudorandom permutation (``RandomIndexShuffle``). Nothing is
stateful, so resuming at image n reproduces the rest of the sequence exactly, and every epoch is
reshuffled. Mirroring uses a second permutation of the same epoch: the images at offsets it sends
to its first half are x-flipped, so each epoch mirrors exactly half of the dataset (N // 2 images).
"""

from __future__ import annotations

from typing import Tuple

import tensorflow as tf


def sample_order(positions: tf.Tensor, num_images: int, seed: int, shuffle: bool) -> Tuple[tf.Tensor, tf.Tensor]:
    """Image indices ``[B]`` int64 and x-flip flags ``[B]`` bool at the given stream positions.

    A pure function of (positions, num_images, seed, shuffle): see the module docstring.
    """
    positions = tf.cast(positions, tf.int64)
    epoch, offset = positions // num_images, positions % num_images
    ones = tf.ones_like(positions)

    def permute(stream: int) -> tf.Tensor:
        seeds = tf.stack([ones * seed, epoch, ones * stream], axis=1)  # [B, 3]: seed, epoch, stream
        return tf.raw_ops.RandomIndexShuffle(index=offset, seed=seeds, max_index=ones * (num_images - 1), rounds=4)

    indices = permute(0) if shuffle else offset
    flips = permute(1) < num_images // 2
    return indices, flips
