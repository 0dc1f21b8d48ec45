"""Minibatch standard deviation: lets the discriminator see the variety of a group of samples."""

from __future__ import annotations

from typing import Optional

import keras
import tensorflow as tf

from layers.base import StyleGANLayer


@keras.saving.register_keras_serializable(package="tf_stylegan2")
class MinibatchStd(StyleGANLayer):
    """Appends ``num_channels`` feature maps holding the mean standard deviation over sample groups.

    Shapes: ``[N, H, W, C] -> [N, H, W, C + num_channels]``.

    The batch is split into groups of ``min(group_size, N)`` samples (sample ``i`` belongs to group
    ``i % (N / G)``, as in NVIDIA's code) and the channels into ``num_channels`` slices. For each
    group and slice the standard deviation over the group is averaged over channels and pixels
    and broadcast back to every sample of the group.

    Args:
      group_size: samples per group (``min(group_size, N)``); None: the whole batch.
      num_channels: feature maps appended, one per channel slice (NVIDIA's ``num_channels``).
    """

    def __init__(self, group_size: Optional[int] = 4, num_channels: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.group_size = None if group_size is None else int(group_size)
        self.num_channels = int(num_channels)
        self.built = True

    def call(self, x: tf.Tensor) -> tf.Tensor:
        _, h, w, c = x.shape
        f = self.num_channels
        if c % f != 0:
            raise ValueError(f"{self.name}: {c} channels cannot be split into {f} minibatch-std slices")
        n_static = x.shape[0]
        n = tf.shape(x)[0]
        if self.group_size is None:
            g = n
        elif n_static is not None:
            g = min(self.group_size, n_static)
            if n_static % g != 0:
                raise ValueError(
                    f"{self.name}: batch size {n_static} is not divisible by the minibatch-std group size {g}"
                )
        else:
            g = tf.minimum(self.group_size, n)
        y = tf.reshape(x, [g, -1, h, w, f, c // f])  # [G, n, H, W, F, c]
        y = tf.cast(y, tf.float32)
        y = y - tf.reduce_mean(y, axis=0)
        y = tf.sqrt(tf.reduce_mean(tf.square(y), axis=0) + 1e-8)  # [n, H, W, F, c]
        y = tf.reduce_mean(y, axis=[1, 2, 4])  # [n, F]
        y = tf.tile(tf.reshape(y, [-1, 1, 1, f]), [g, h, w, 1])  # [N, H, W, F]
        return tf.ensure_shape(tf.concat([x, tf.cast(y, x.dtype)], axis=-1), [n_static, h, w, c + f])

    def get_config(self) -> dict:
        return {**super().get_config(), "group_size": self.group_size, "num_channels": self.num_channels}
