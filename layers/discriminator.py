"""The discriminator's layers: a downsampling block per resolution, the 4x4 epilogue, and
:func:`discriminator_blocks`, which assembles the blocks by the rules the synthesis network uses.
"""

from __future__ import annotations

from typing import Any, List, Mapping, Optional, Sequence, Tuple

import keras
import numpy as np
import tensorflow as tf

from custom_ops import downsample2d, setup_filter
from layers.base import SQRT_HALF, StyleGANLayer
from layers.equalized import EqualizedConv2D, EqualizedDense
from layers.minibatch_std import MinibatchStd
from layers.rules import block_resolutions, check_architecture


@keras.saving.register_keras_serializable(package="tf_stylegan2")
class DiscriminatorBlock(StyleGANLayer):
    """One resolution of the discriminator: (FromRGB) + conv0 + 2x downsampling conv1 (+ skip).

    Shapes: ``x [N, R, R, tmp_channels]`` (None for the first block), ``img [N, R, R, img_channels]``
    -> ``(x [N, R/2, R/2, out_channels], img [N, R/2, R/2, img_channels] or None)``.

    Architectures: 'orig' (FromRGB in the first block only), 'skip' (every block adds a FromRGB of
    the downsampled image), 'resnet' (a 1x1 downsampling skip connection around the two
    convolutions, the StyleGAN2 default).

    Args:
      in_channels: feature maps in; 0 for the first block, which reads the image only.
      tmp_channels: feature maps of conv0 (and of FromRGB).
      out_channels: feature maps out, at half the resolution.
      resolution: input height and width.
      img_channels: image channels.
      architecture: 'orig', 'skip' or 'resnet'.
      activation: activation of the convolutions.
      resample_filter: FIR taps of the downsampling filters.
      conv_clamp: clamp of the convolutions' outputs (None: no clamping).
    """

    def __init__(
        self,
        in_channels: int,
        tmp_channels: int,
        out_channels: int,
        resolution: int,
        img_channels: int,
        architecture: str = "resnet",
        activation: str = "lrelu",
        resample_filter: Sequence[float] = (1, 3, 3, 1),
        conv_clamp: Optional[float] = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_architecture(architecture)
        if in_channels not in (0, tmp_channels):
            raise ValueError(f"in_channels must be 0 (first block) or tmp_channels={tmp_channels}, got {in_channels}")
        self.in_channels = int(in_channels)
        self.tmp_channels = int(tmp_channels)
        self.out_channels = int(out_channels)
        self.resolution = int(resolution)
        self.img_channels = int(img_channels)
        self.architecture = architecture
        self.activation = activation
        self.resample_filter = [float(t) for t in resample_filter]
        self.conv_clamp = None if conv_clamp is None else float(conv_clamp)
        self.filter = setup_filter(self.resample_filter)

        policy = self.dtype_policy
        conv = dict(activation=activation, conv_clamp=self.conv_clamp, dtype=policy)
        self.fromrgb = None
        if self.in_channels == 0 or architecture == "skip":
            self.fromrgb = EqualizedConv2D(self.img_channels, self.tmp_channels, 1, name="fromrgb", **conv)
        self.conv0 = EqualizedConv2D(self.tmp_channels, self.tmp_channels, 3, name="conv0", **conv)
        self.conv1 = EqualizedConv2D(
            self.tmp_channels, self.out_channels, 3, down=2, resample_filter=self.resample_filter, name="conv1", **conv
        )
        self.skip = None
        if architecture == "resnet":
            self.skip = EqualizedConv2D(
                self.tmp_channels, self.out_channels, 1, use_bias=False, down=2,
                resample_filter=self.resample_filter, name="skip", dtype=policy,
            )
        self.built = True

    def call(self, x: Optional[tf.Tensor], img: Optional[tf.Tensor]) -> Tuple[tf.Tensor, Optional[tf.Tensor]]:
        r = self.resolution
        if x is not None:
            self.check_shape(x, [None, r, r, self.in_channels], "x")
            x = self.to_compute(x)
        if self.fromrgb is not None:
            self.check_shape(img, [None, r, r, self.img_channels], "img")
            img = self.to_compute(img)
            y = self.fromrgb(img)
            x = y if x is None else x + y
            img = downsample2d(img, self.filter) if self.architecture == "skip" else None
        if self.skip is not None:
            y = self.skip(x, gain=SQRT_HALF)
            x = self.conv0(x)
            x = self.conv1(x, gain=SQRT_HALF)
            x = y + x
        else:
            x = self.conv1(self.conv0(x))
        return x, img

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "in_channels": self.in_channels,
            "tmp_channels": self.tmp_channels,
            "out_channels": self.out_channels,
            "resolution": self.resolution,
            "img_channels": self.img_channels,
            "architecture": self.architecture,
            "activation": self.activation,
            "resample_filter": self.resample_filter,
            "conv_clamp": self.conv_clamp,
        }


@keras.saving.register_keras_serializable(package="tf_stylegan2")
class DiscriminatorEpilogue(StyleGANLayer):
    """The 4x4 head: (FromRGB) + minibatch std + conv + fully connected + output (+ projection).

    Shapes: ``x [N, R, R, in_channels], img [N, R, R, img_channels] (skip only), cmap [N, cmap_dim]
    (conditional only) -> logits [N, 1]`` float32.

    A conditional discriminator projects: the output layer gives ``cmap_dim`` features and the
    logit is their dot product with the mapped label, divided by ``sqrt(cmap_dim)``.

    Args:
      in_channels: feature maps in.
      cmap_dim: width of the mapped label (0: unconditional, one logit).
      resolution: input height and width (4).
      img_channels: image channels.
      architecture: 'orig', 'skip' or 'resnet'; 'skip' adds a FromRGB of the image.
      mbstd_group_size: :class:`MinibatchStd` group size (None: the whole batch).
      mbstd_num_channels: minibatch-std feature maps (0: no minibatch std).
      activation: activation of conv and fc.
      conv_clamp: clamp of the conv's output (None: no clamping).
      is_first: no block precedes the epilogue (a 4x4 discriminator), so it reads the image itself
        and ``x`` is None.
    """

    def __init__(
        self,
        in_channels: int,
        cmap_dim: int,
        resolution: int,
        img_channels: int,
        architecture: str = "resnet",
        mbstd_group_size: Optional[int] = 4,
        mbstd_num_channels: int = 1,
        activation: str = "lrelu",
        conv_clamp: Optional[float] = None,
        is_first: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_architecture(architecture)
        self.is_first = bool(is_first)
        self.in_channels = int(in_channels)
        self.cmap_dim = int(cmap_dim)
        self.resolution = int(resolution)
        self.img_channels = int(img_channels)
        self.architecture = architecture
        self.mbstd_group_size = None if mbstd_group_size is None else int(mbstd_group_size)
        self.mbstd_num_channels = int(mbstd_num_channels)
        self.activation = activation
        self.conv_clamp = None if conv_clamp is None else float(conv_clamp)

        policy = self.dtype_policy
        self.fromrgb = None
        if architecture == "skip" or self.is_first:
            self.fromrgb = EqualizedConv2D(
                self.img_channels, self.in_channels, 1, activation=activation, name="fromrgb", dtype=policy
            )
        self.mbstd = None
        if self.mbstd_num_channels > 0:
            self.mbstd = MinibatchStd(self.mbstd_group_size, self.mbstd_num_channels, name="mbstd", dtype=policy)
        self.conv = EqualizedConv2D(
            self.in_channels + self.mbstd_num_channels, self.in_channels, 3, activation=activation,
            conv_clamp=self.conv_clamp, name="conv", dtype=policy,
        )
        self.fc = EqualizedDense(
            self.in_channels * self.resolution**2, self.in_channels, activation=activation, name="fc", dtype=policy
        )
        self.out = EqualizedDense(self.in_channels, 1 if self.cmap_dim == 0 else self.cmap_dim, name="out", dtype=policy)
        self.built = True

    def call(
        self, x: Optional[tf.Tensor], img: Optional[tf.Tensor] = None, cmap: Optional[tf.Tensor] = None
    ) -> tf.Tensor:
        r = self.resolution
        if not self.is_first:
            self.check_shape(x, [None, r, r, self.in_channels], "x")
            x = self.to_compute(x)
        if self.fromrgb is not None:
            self.check_shape(img, [None, r, r, self.img_channels], "img")
            y = self.fromrgb(self.to_compute(img))
            x = y if self.is_first else x + y
        if self.mbstd is not None:
            x = self.mbstd(x)
        x = self.conv(x)
        x = self.fc(tf.reshape(x, [-1, r * r * self.in_channels]))  # NHWC flattening order
        x = self.out(x)
        if self.cmap_dim > 0:
            self.check_shape(cmap, [None, self.cmap_dim], "cmap")
            x = tf.reduce_sum(x * self.to_compute(cmap), axis=1, keepdims=True) * (1 / np.sqrt(self.cmap_dim))
        return tf.cast(x, tf.float32)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "in_channels": self.in_channels,
            "cmap_dim": self.cmap_dim,
            "resolution": self.resolution,
            "img_channels": self.img_channels,
            "architecture": self.architecture,
            "mbstd_group_size": self.mbstd_group_size,
            "mbstd_num_channels": self.mbstd_num_channels,
            "activation": self.activation,
            "conv_clamp": self.conv_clamp,
            "is_first": self.is_first,
        }


def discriminator_blocks(
    channels: Mapping[int, int], policies: Mapping[int, Any], **block_kwargs: Any
) -> List[DiscriminatorBlock]:
    """The blocks from the highest resolution of ``channels`` down to 8x8, each named ``b<R>``; a
    :class:`DiscriminatorEpilogue` at 4x4 follows them. The mirror of SynthesisNetwork's loop, by
    the same rules: the block at resolution r reads ``channels[r]`` feature maps and gives
    ``channels[r // 2]`` (:func:`layers.rules.channels_per_resolution`), and computes in
    ``policies[r]`` (:func:`layers.rules.block_policies`). ``block_kwargs`` go to every block:
    ``img_channels`` and the options of :class:`DiscriminatorBlock` (as NVIDIA's ``block_kwargs``).

    A function rather than a layer: Keras 3 files store a model's weights under its attribute
    path, so a layer around the blocks would move every weight of the discriminator's ``.keras``
    files, and it would reorder ``Discriminator.weights``, which checkpoints list in order.
    """
    img_resolution = max(channels)
    return [
        DiscriminatorBlock(
            channels[r] if r < img_resolution else 0, channels[r], channels[r // 2], resolution=r, name=f"b{r}",
            dtype=policies[r], **block_kwargs,
        )
        for r in reversed(block_resolutions(img_resolution)[1:])
    ]
