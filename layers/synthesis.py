"""The synthesis network: ws to an image, block by block from 4x4 to the output resolution."""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import keras
import tensorflow as tf

from custom_ops import bias_act, get_activation, setup_filter, upsample2d
from layers.base import SQRT_HALF, StyleGANLayer
from layers.equalized import EqualizedConv2D
from layers.modulated_conv import ModulatedConv2D
from layers.noise import NoiseInjection, check_noise_mode
from layers.rules import block_policies, block_resolutions, channels_per_resolution, check_architecture, check_resolution
from layers.to_rgb import ToRGB


@keras.saving.register_keras_serializable(package="tf_stylegan2")
class SynthesisLayer(StyleGANLayer):
    """Modulated 3x3 convolution, then noise, bias and activation (noise and bias outside the style block).

    Shapes: ``x [N, R/up, R/up, in_channels], w [N, w_dim] -> [N, R, R, out_channels]`` with
    ``R = resolution``.

    Args:
      in_channels: feature maps in.
      out_channels: feature maps out.
      w_dim: width of w, the input of the style affine.
      resolution: output height and width.
      kernel_size: convolution kernel size.
      up: 1, or 2 for a 2x upsampling convolution (the first layer of a block).
      use_noise: add per-pixel noise (:class:`NoiseInjection`).
      activation: name from ``custom_ops.ACTIVATIONS``, applied with its default gain.
      resample_filter: FIR taps of the upsampling filter.
      conv_clamp: clamp the output to ``[-conv_clamp, conv_clamp]`` (None: no clamping).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        resolution: int,
        kernel_size: int = 3,
        up: int = 1,
        use_noise: bool = True,
        activation: str = "lrelu",
        resample_filter: Sequence[float] = (1, 3, 3, 1),
        conv_clamp: Optional[float] = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.in_channels = int(in_channels)
        self.out_channels = int(out_channels)
        self.w_dim = int(w_dim)
        self.resolution = int(resolution)
        self.kernel_size = int(kernel_size)
        self.up = int(up)
        self.use_noise = bool(use_noise)
        self.activation = activation
        self.act_gain = get_activation(activation).def_gain
        self.resample_filter = [float(t) for t in resample_filter]
        self.conv_clamp = None if conv_clamp is None else float(conv_clamp)
        policy = self.dtype_policy
        self.conv = ModulatedConv2D(
            self.in_channels, self.out_channels, self.w_dim, kernel_size=self.kernel_size, up=self.up,
            resample_filter=self.resample_filter, name="conv", dtype=policy,
        )
        self.noise = NoiseInjection(self.resolution, name="noise", dtype=policy) if self.use_noise else None
        self.bias = self.add_weight(name="bias", shape=(self.out_channels,), initializer="zeros")
        self.built = True

    def call(
        self,
        x: tf.Tensor,
        w: tf.Tensor,
        noise_mode: str = "random",
        fused_modconv: bool = False,
        gain: float = 1.0,
        noise_seed: Optional[tf.Tensor] = None,
    ) -> tf.Tensor:
        x = self.conv(x, w, fused_modconv=fused_modconv)
        if self.noise is not None:
            x = self.noise(x, noise_mode=noise_mode, seed=noise_seed)
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act(x, self.to_compute(self.bias), act=self.activation, gain=self.act_gain * gain, clamp=clamp)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "in_channels": self.in_channels,
            "out_channels": self.out_channels,
            "w_dim": self.w_dim,
            "resolution": self.resolution,
            "kernel_size": self.kernel_size,
            "up": self.up,
            "use_noise": self.use_noise,
            "activation": self.activation,
            "resample_filter": self.resample_filter,
            "conv_clamp": self.conv_clamp,
        }


@keras.saving.register_keras_serializable(package="tf_stylegan2")
class SynthesisBlock(StyleGANLayer):
    """One resolution of the generator: (const or 2x upsampling conv0) + conv1 (+ ToRGB, + skip).

    Shapes: ``x [N, R/2, R/2, in_channels]`` (None for the first block), ``img [N, R/2, R/2,
    img_channels]`` (or None), ``ws [N, num_conv + num_torgb, w_dim]`` ->
    ``(x [N, R, R, out_channels], img [N, R, R, img_channels] float32 or None)``.

    Architectures: 'orig' (ToRGB at the last block only), 'skip' (every block adds its ToRGB to the
    upsampled image of the previous block, the StyleGAN2 default), 'resnet' (a 1x1 upsampling skip
    connection around the two convolutions, branches scaled by sqrt(1/2)).

    Args:
      in_channels: feature maps in; 0 for the first block, which starts from a learned constant.
      const_channels: feature maps of that constant (default ``out_channels``); stylegan2-ada's TF
        ``G_synthesis`` calls it ``fmap_const``.
      out_channels: feature maps out.
      w_dim: width of w.
      resolution: output height and width.
      img_channels: image channels.
      is_last: the output block (holds the ToRGB in the 'orig' architecture).
      architecture: 'orig', 'skip' or 'resnet'.
      resample_filter: FIR taps of the upsampling filters.
      conv_clamp: clamp of every layer's output (None: no clamping).
      use_noise: add per-pixel noise in each layer.
      activation: activation of the convolutions.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        resolution: int,
        img_channels: int,
        is_last: bool,
        architecture: str = "skip",
        resample_filter: Sequence[float] = (1, 3, 3, 1),
        conv_clamp: Optional[float] = None,
        use_noise: bool = True,
        activation: str = "lrelu",
        const_channels: Optional[int] = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_architecture(architecture)
        if const_channels is not None and in_channels != 0:
            raise ValueError("const_channels applies to the first block only (in_channels=0)")
        self.in_channels = int(in_channels)
        self.out_channels = int(out_channels)
        self.w_dim = int(w_dim)
        self.resolution = int(resolution)
        self.img_channels = int(img_channels)
        self.is_last = bool(is_last)
        self.architecture = architecture
        self.resample_filter = [float(t) for t in resample_filter]
        self.conv_clamp = None if conv_clamp is None else float(conv_clamp)
        self.use_noise = bool(use_noise)
        self.activation = activation
        self.const_channels = None if const_channels is None else int(const_channels)
        self.filter = setup_filter(self.resample_filter)

        policy = self.dtype_policy
        layer_kwargs = dict(
            w_dim=self.w_dim, resolution=self.resolution, use_noise=self.use_noise, activation=activation,
            resample_filter=self.resample_filter, conv_clamp=self.conv_clamp, dtype=policy,
        )
        self.const = None
        self.conv0 = None
        conv1_in = self.out_channels
        if self.in_channels == 0:
            conv1_in = self.const_channels or self.out_channels
            self.const = self.add_weight(
                name="const",
                shape=(self.resolution, self.resolution, conv1_in),
                initializer=keras.initializers.RandomNormal(stddev=1.0),
            )
        else:
            self.conv0 = SynthesisLayer(self.in_channels, self.out_channels, up=2, name="conv0", **layer_kwargs)
        self.conv1 = SynthesisLayer(conv1_in, self.out_channels, name="conv1", **layer_kwargs)
        self.num_conv = 1 if self.conv0 is None else 2
        self.torgb = None
        if self.is_last or self.architecture == "skip":
            self.torgb = ToRGB(self.out_channels, self.img_channels, self.w_dim, conv_clamp=self.conv_clamp,
                               name="torgb", dtype=policy)
        self.num_torgb = 0 if self.torgb is None else 1
        self.skip = None
        if self.in_channels != 0 and self.architecture == "resnet":
            self.skip = EqualizedConv2D(
                self.in_channels, self.out_channels, kernel_size=1, use_bias=False, up=2,
                resample_filter=self.resample_filter, name="skip", dtype=policy,
            )
        self.built = True

    def call(
        self,
        x: Optional[tf.Tensor],
        img: Optional[tf.Tensor],
        ws: tf.Tensor,
        noise_mode: str = "random",
        fused_modconv: bool = False,
        noise_seed: Optional[tf.Tensor] = None,
    ) -> Tuple[tf.Tensor, Optional[tf.Tensor]]:
        self.check_shape(ws, [None, self.num_conv + self.num_torgb, self.w_dim], "ws")
        # conv0 and conv1 draw noise. Seeds are laid out for three layers per block (the third,
        # ToRGB, has none): another stride would change the noise that each noise_seed names.
        seeds = _layer_seeds(noise_seed, 3)[:2]
        if self.const is not None:
            x = tf.tile(self.to_compute(self.const)[tf.newaxis], [tf.shape(ws)[0], 1, 1, 1])
            x = self.conv1(x, ws[:, 0], noise_mode=noise_mode, fused_modconv=fused_modconv, noise_seed=seeds[1])
        else:
            half = self.resolution // 2
            self.check_shape(x, [None, half, half, self.in_channels], "x")
            x = self.to_compute(x)
            kw = dict(noise_mode=noise_mode, fused_modconv=fused_modconv)
            if self.skip is not None:
                y = self.skip(x, gain=SQRT_HALF)
                x = self.conv0(x, ws[:, 0], noise_seed=seeds[0], **kw)
                x = self.conv1(x, ws[:, 1], gain=SQRT_HALF, noise_seed=seeds[1], **kw)
                x = y + x
            else:
                x = self.conv0(x, ws[:, 0], noise_seed=seeds[0], **kw)
                x = self.conv1(x, ws[:, 1], noise_seed=seeds[1], **kw)

        if img is not None:
            img = upsample2d(img, self.filter)
        if self.torgb is not None:
            y = tf.cast(self.torgb(x, ws[:, self.num_conv], fused_modconv=fused_modconv), tf.float32)
            img = y if img is None else img + y
        return x, img

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "in_channels": self.in_channels,
            "out_channels": self.out_channels,
            "w_dim": self.w_dim,
            "resolution": self.resolution,
            "img_channels": self.img_channels,
            "is_last": self.is_last,
            "architecture": self.architecture,
            "resample_filter": self.resample_filter,
            "conv_clamp": self.conv_clamp,
            "use_noise": self.use_noise,
            "activation": self.activation,
            "const_channels": self.const_channels,
        }


def _layer_seeds(seed: Optional[tf.Tensor], count: int) -> List[Optional[tf.Tensor]]:
    """Derives ``count`` distinct stateless seeds ``[2]`` from one (None stays None)."""
    if seed is None:
        return [None] * count
    seed = tf.cast(seed, tf.int64)
    return [tf.stack([seed[0], seed[1] * count + i]) for i in range(count)]


@keras.saving.register_keras_serializable(package="tf_stylegan2")
class SynthesisNetwork(StyleGANLayer):
    """Learned 4x4 constant -> synthesis blocks up to ``img_resolution``.

    Shapes: ``ws [N, num_ws, w_dim] -> img [N, img_resolution, img_resolution, img_channels]``
    (float32, roughly in [-1, 1]).

    Channels at resolution r: ``min(channel_base // r, channel_max)``; the 4x4 constant has
    ``const_channels`` (default: those of the 4x4 block). The ``num_fp16_res``
    highest resolutions compute in the low-precision dtype of ``fp16_policy`` (e.g.
    'mixed_bfloat16'); the others in this layer's own dtype policy (``layers.rules``).

    Args:
      w_dim: width of w.
      img_resolution: output resolution, a power of two >= 4.
      img_channels: image channels.
      channel_base, channel_max: the channel rule above.
      num_fp16_res: how many of the highest resolutions use ``fp16_policy``.
      fp16_policy: a mixed Keras dtype policy name, or None for none.
      architecture: 'orig', 'skip' or 'resnet' (:class:`SynthesisBlock`).
      resample_filter: FIR taps of the upsampling filters.
      conv_clamp: clamp of every layer's output (None: no clamping).
      use_noise: add per-pixel noise in each layer.
      activation: activation of the convolutions.
      const_channels: feature maps of the 4x4 constant (None: those of the 4x4 block).
    """

    def __init__(
        self,
        w_dim: int,
        img_resolution: int,
        img_channels: int,
        channel_base: int = 32768,
        channel_max: int = 512,
        num_fp16_res: int = 0,
        fp16_policy: Optional[str] = None,
        architecture: str = "skip",
        resample_filter: Sequence[float] = (1, 3, 3, 1),
        conv_clamp: Optional[float] = None,
        use_noise: bool = True,
        activation: str = "lrelu",
        const_channels: Optional[int] = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_resolution(img_resolution)
        check_architecture(architecture)
        if img_channels < 1:
            raise ValueError(f"img_channels must be >= 1, got {img_channels}")
        self.w_dim = int(w_dim)
        self.img_resolution = int(img_resolution)
        self.img_channels = int(img_channels)
        self.channel_base = int(channel_base)
        self.channel_max = int(channel_max)
        self.num_fp16_res = int(num_fp16_res)
        self.fp16_policy = fp16_policy
        self.architecture = architecture
        self.resample_filter = [float(t) for t in resample_filter]
        self.conv_clamp = None if conv_clamp is None else float(conv_clamp)
        self.use_noise = bool(use_noise)
        self.activation = activation
        self.const_channels = None if const_channels is None else int(const_channels)

        self.block_resolutions = block_resolutions(img_resolution)
        channels = channels_per_resolution(img_resolution, self.channel_base, self.channel_max)
        policies = block_policies(img_resolution, self.num_fp16_res, fp16_policy, self.dtype_policy)
        self.blocks = []
        self.num_ws = 0
        for res in self.block_resolutions:
            block = SynthesisBlock(
                channels[res // 2] if res > 4 else 0, channels[res], w_dim=self.w_dim, resolution=res,
                img_channels=self.img_channels, is_last=(res == self.img_resolution), architecture=architecture,
                resample_filter=self.resample_filter, conv_clamp=self.conv_clamp, use_noise=self.use_noise,
                activation=activation, const_channels=self.const_channels if res == 4 else None, name=f"b{res}",
                dtype=policies[res],
            )
            self.num_ws += block.num_conv
            if block.is_last:
                self.num_ws += block.num_torgb
            self.blocks.append(block)
        self.built = True

    def call(
        self,
        ws: tf.Tensor,
        noise_mode: str = "random",
        fused_modconv: bool = False,
        noise_seed: Optional[tf.Tensor] = None,
    ) -> tf.Tensor:
        """``noise_seed``: optional int tensor ``[2]`` making 'random' noise reproducible.

        ``fused_modconv`` defaults to False: per-sample scaling measured 1.8-2.5x faster than the
        grouped convolution on CPU (docs/PERFORMANCE.md); both agree within 1e-5.
        """
        check_noise_mode(noise_mode)
        self.check_shape(ws, [None, self.num_ws, self.w_dim], "ws")
        ws = tf.cast(ws, tf.float32)
        x = img = None
        w_idx = 0
        block_seeds = _layer_seeds(noise_seed, len(self.blocks))
        for block, seed in zip(self.blocks, block_seeds):
            block_ws = ws[:, w_idx : w_idx + block.num_conv + block.num_torgb]
            x, img = block(x, img, block_ws, noise_mode=noise_mode, fused_modconv=fused_modconv, noise_seed=seed)
            w_idx += block.num_conv
        return img

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "w_dim": self.w_dim,
            "img_resolution": self.img_resolution,
            "img_channels": self.img_channels,
            "channel_base": self.channel_base,
            "channel_max": self.channel_max,
            "num_fp16_res": self.num_fp16_res,
            "fp16_policy": self.fp16_policy,
            "architecture": self.architecture,
            "resample_filter": self.resample_filter,
            "conv_clamp": self.conv_clamp,
            "use_noise": self.use_noise,
            "activation": self.activation,
            "const_channels": self.const_channels,
        }
