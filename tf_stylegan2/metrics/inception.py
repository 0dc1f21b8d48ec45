"""Inception-v3 of the 2015 FID graph (``inception-2015-12-05``) as a Keras model, NHWC.

This is the network behind every published FID, KID, precision/recall-on-Inception and IS number:
TensorFlow's 2015 release of Inception-v3 (1008 classes), which TTUR's FID code and NVIDIA's
StyleGAN metrics run. It differs from torchvision's ImageNet Inception-v3 in the ways pytorch-fid's
``FIDInceptionA/C/E_1/E_2`` blocks record: the 3x3 average pools of the A, C and first E blocks
average over valid pixels only (TF's SAME padding, torch's ``count_include_pad=False``), the last E
block (Mixed_7c) pools with a max instead of an average, batch norm uses epsilon 1e-3 and the
convolutions have no bias. Outputs are pool3 (the 2048 channel means of Mixed_7c) and the 1008
logits without the output bias (NVIDIA's ``no_output_bias=True``, as the original IS code).

Attribute names follow torchvision / pytorch-fid (``Conv2d_1a_3x3``, ``Mixed_5b.branch1x1``, ...)
so that a state-dict key names the layer it feeds; :func:`load_torch_weights` converts torch
layouts once.
"""

from __future__ import annotations

from typing import Dict, Iterator, Mapping, Optional, Tuple, Union

import keras
import numpy as np
import tensorflow as tf

from tf_stylegan2.metrics.torch_state import checked_tensors

BN_EPSILON = 1e-3  # the 2015 graph's batch norm epsilon
NUM_CLASSES = 1008
POOL3_DIM = 2048
_FLOAT = "float32"  # the feature networks always compute in float32, whatever the global policy

KernelSize = Union[int, Tuple[int, int]]


@keras.saving.register_keras_serializable(package="tf_stylegan2")
class ConvBN(keras.layers.Layer):
    """Convolution without bias, inference batch norm (epsilon 1e-3) and ReLU: torchvision's
    ``BasicConv2d`` and one conv unit of the 2015 graph.

    Shapes: ``[N, H, W, in_channels] -> [N, H', W', filters]``.

    Args:
      in_channels: input channels.
      filters: output channels.
      kernel_size: ``k`` or ``(kh, kw)``.
      strides: convolution stride.
      padding: ``"valid"``, or ``"same"`` for the stride-1 convolutions that torch pads by
        ``(kh - 1) / 2, (kw - 1) / 2`` (all kernels here are odd, so the two agree).
    """

    def __init__(
        self,
        in_channels: int,
        filters: int,
        kernel_size: KernelSize,
        strides: int = 1,
        padding: str = "valid",
        **kwargs,
    ):
        kwargs.setdefault("dtype", _FLOAT)
        super().__init__(**kwargs)
        self.in_channels = int(in_channels)
        self.filters = int(filters)
        self.kernel_size = _pair(kernel_size)
        self.strides = int(strides)
        self.padding = padding
        self.conv = keras.layers.Conv2D(
            self.filters, self.kernel_size, strides=self.strides, padding=padding, use_bias=False,
            kernel_initializer="zeros", dtype=_FLOAT, name="conv",
        )
        self.conv.build((None, None, None, self.in_channels))
        self.bn = keras.layers.BatchNormalization(epsilon=BN_EPSILON, dtype=_FLOAT, name="bn")
        self.bn.build((None, None, None, self.filters))
        self.built = True

    def call(self, x: tf.Tensor) -> tf.Tensor:
        return tf.nn.relu(self.bn(self.conv(x), training=False))

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "in_channels": self.in_channels,
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "strides": self.strides,
            "padding": self.padding,
        }


def _pair(k: KernelSize) -> Tuple[int, int]:
    return (int(k), int(k)) if isinstance(k, (int, np.integer)) else (int(k[0]), int(k[1]))


class _Block(keras.layers.Layer):
    """A mixed block: named ConvBN units whose branch outputs are concatenated on channels."""

    UNITS: Tuple[str, ...] = ()

    def __init__(self, in_channels: int, **kwargs):
        kwargs.setdefault("dtype", _FLOAT)
        super().__init__(**kwargs)
        self.in_channels = int(in_channels)

    def _unit(
        self, name: str, filters: int, kernel_size: KernelSize, in_channels: Optional[int] = None, **kw
    ) -> ConvBN:
        unit = ConvBN(self.in_channels if in_channels is None else in_channels, filters, kernel_size, name=name, **kw)
        setattr(self, name, unit)
        return unit

    def units(self) -> Iterator[Tuple[str, ConvBN]]:
        for name in self.UNITS:
            yield name, getattr(self, name)

    def get_config(self) -> dict:
        return {**super().get_config(), "in_channels": self.in_channels}


def _avg_pool_valid_only(x: tf.Tensor) -> tf.Tensor:
    # TF's SAME average pool divides by the number of valid pixels: pytorch-fid's
    # count_include_pad=False patch.
    return tf.nn.avg_pool2d(x, 3, 1, "SAME")


@keras.saving.register_keras_serializable(package="tf_stylegan2")
class InceptionA(_Block):
    """35x35 block (Mixed_5b/5c/5d): 1x1, 5x5, double 3x3 and pooled 1x1 branches.

    Shapes: ``[N, 35, 35, in_channels] -> [N, 35, 35, 224 + pool_features]``.

    Args:
      in_channels: input channels.
      pool_features: channels of the pooled branch.
    """

    UNITS = ("branch1x1", "branch5x5_1", "branch5x5_2", "branch3x3dbl_1", "branch3x3dbl_2",
             "branch3x3dbl_3", "branch_pool")

    def __init__(self, in_channels: int, pool_features: int, **kwargs):
        super().__init__(in_channels, **kwargs)
        self.pool_features = int(pool_features)
        self._unit("branch1x1", 64, 1)
        self._unit("branch5x5_1", 48, 1)
        self._unit("branch5x5_2", 64, 5, in_channels=48, padding="same")
        self._unit("branch3x3dbl_1", 64, 1)
        self._unit("branch3x3dbl_2", 96, 3, in_channels=64, padding="same")
        self._unit("branch3x3dbl_3", 96, 3, in_channels=96, padding="same")
        self._unit("branch_pool", self.pool_features, 1)
        self.built = True

    def call(self, x: tf.Tensor) -> tf.Tensor:
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        pool = self.branch_pool(_avg_pool_valid_only(x))
        return tf.concat([self.branch1x1(x), b5, b3, pool], axis=-1)

    def get_config(self) -> dict:
        return {**super().get_config(), "pool_features": self.pool_features}


@keras.saving.register_keras_serializable(package="tf_stylegan2")
class InceptionB(_Block):
    """Grid reduction 35 -> 17 (Mixed_6a): strided 3x3, strided double 3x3, max pool.

    Shapes: ``[N, 35, 35, in_channels] -> [N, 17, 17, 480 + in_channels]``.

    Args:
      in_channels: input channels.
    """

    UNITS = ("branch3x3", "branch3x3dbl_1", "branch3x3dbl_2", "branch3x3dbl_3")

    def __init__(self, in_channels: int, **kwargs):
        super().__init__(in_channels, **kwargs)
        self._unit("branch3x3", 384, 3, strides=2)
        self._unit("branch3x3dbl_1", 64, 1)
        self._unit("branch3x3dbl_2", 96, 3, in_channels=64, padding="same")
        self._unit("branch3x3dbl_3", 96, 3, in_channels=96, strides=2)
        self.built = True

    def call(self, x: tf.Tensor) -> tf.Tensor:
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        pool = tf.nn.max_pool2d(x, 3, 2, "VALID")
        return tf.concat([self.branch3x3(x), b3, pool], axis=-1)


@keras.saving.register_keras_serializable(package="tf_stylegan2")
class InceptionC(_Block):
    """17x17 block (Mixed_6b..6e) with factorised 7x7 convolutions.

    Shapes: ``[N, 17, 17, in_channels] -> [N, 17, 17, 768]``.

    Args:
      in_channels: input channels.
      channels_7x7: width of the 7x7 towers.
    """

    UNITS = ("branch1x1", "branch7x7_1", "branch7x7_2", "branch7x7_3", "branch7x7dbl_1",
             "branch7x7dbl_2", "branch7x7dbl_3", "branch7x7dbl_4", "branch7x7dbl_5", "branch_pool")

    def __init__(self, in_channels: int, channels_7x7: int, **kwargs):
        super().__init__(in_channels, **kwargs)
        c7 = self.channels_7x7 = int(channels_7x7)
        self._unit("branch1x1", 192, 1)
        self._unit("branch7x7_1", c7, 1)
        self._unit("branch7x7_2", c7, (1, 7), in_channels=c7, padding="same")
        self._unit("branch7x7_3", 192, (7, 1), in_channels=c7, padding="same")
        self._unit("branch7x7dbl_1", c7, 1)
        self._unit("branch7x7dbl_2", c7, (7, 1), in_channels=c7, padding="same")
        self._unit("branch7x7dbl_3", c7, (1, 7), in_channels=c7, padding="same")
        self._unit("branch7x7dbl_4", c7, (7, 1), in_channels=c7, padding="same")
        self._unit("branch7x7dbl_5", 192, (1, 7), in_channels=c7, padding="same")
        self._unit("branch_pool", 192, 1)
        self.built = True

    def call(self, x: tf.Tensor) -> tf.Tensor:
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        bd = x
        for name in self.UNITS[4:9]:
            bd = getattr(self, name)(bd)
        pool = self.branch_pool(_avg_pool_valid_only(x))
        return tf.concat([self.branch1x1(x), b7, bd, pool], axis=-1)

    def get_config(self) -> dict:
        return {**super().get_config(), "channels_7x7": self.channels_7x7}


@keras.saving.register_keras_serializable(package="tf_stylegan2")
class InceptionD(_Block):
    """Grid reduction 17 -> 8 (Mixed_7a).

    Shapes: ``[N, 17, 17, in_channels] -> [N, 8, 8, 512 + in_channels]``.

    Args:
      in_channels: input channels.
    """

    UNITS = ("branch3x3_1", "branch3x3_2", "branch7x7x3_1", "branch7x7x3_2", "branch7x7x3_3",
             "branch7x7x3_4")

    def __init__(self, in_channels: int, **kwargs):
        super().__init__(in_channels, **kwargs)
        self._unit("branch3x3_1", 192, 1)
        self._unit("branch3x3_2", 320, 3, in_channels=192, strides=2)
        self._unit("branch7x7x3_1", 192, 1)
        self._unit("branch7x7x3_2", 192, (1, 7), in_channels=192, padding="same")
        self._unit("branch7x7x3_3", 192, (7, 1), in_channels=192, padding="same")
        self._unit("branch7x7x3_4", 192, 3, in_channels=192, strides=2)
        self.built = True

    def call(self, x: tf.Tensor) -> tf.Tensor:
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = x
        for name in self.UNITS[2:]:
            b7 = getattr(self, name)(b7)
        pool = tf.nn.max_pool2d(x, 3, 2, "VALID")
        return tf.concat([b3, b7, pool], axis=-1)


@keras.saving.register_keras_serializable(package="tf_stylegan2")
class InceptionE(_Block):
    """8x8 block (Mixed_7b, Mixed_7c) with split 1x3 / 3x1 outputs.

    Shapes: ``[N, 8, 8, in_channels] -> [N, 8, 8, 2048]``.

    Args:
      in_channels: input channels.
      pool: ``"avg"`` (Mixed_7b, valid pixels only) or ``"max"`` (Mixed_7c: the 2015 graph pools
        with a max here, pytorch-fid's ``FIDInceptionE_2``).
    """

    UNITS = ("branch1x1", "branch3x3_1", "branch3x3_2a", "branch3x3_2b", "branch3x3dbl_1",
             "branch3x3dbl_2", "branch3x3dbl_3a", "branch3x3dbl_3b", "branch_pool")

    def __init__(self, in_channels: int, pool: str = "avg", **kwargs):
        super().__init__(in_channels, **kwargs)
        if pool not in ("avg", "max"):
            raise ValueError(f"pool must be 'avg' or 'max', got {pool!r}")
        self.pool = pool
        self._unit("branch1x1", 320, 1)
        self._unit("branch3x3_1", 384, 1)
        self._unit("branch3x3_2a", 384, (1, 3), in_channels=384, padding="same")
        self._unit("branch3x3_2b", 384, (3, 1), in_channels=384, padding="same")
        self._unit("branch3x3dbl_1", 448, 1)
        self._unit("branch3x3dbl_2", 384, 3, in_channels=448, padding="same")
        self._unit("branch3x3dbl_3a", 384, (1, 3), in_channels=384, padding="same")
        self._unit("branch3x3dbl_3b", 384, (3, 1), in_channels=384, padding="same")
        self._unit("branch_pool", 192, 1)
        self.built = True

    def call(self, x: tf.Tensor) -> tf.Tensor:
        b3 = self.branch3x3_1(x)
        bd = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        pooled = tf.nn.max_pool2d(x, 3, 1, "SAME") if self.pool == "max" else _avg_pool_valid_only(x)
        return tf.concat(
            [self.branch1x1(x), self.branch3x3_2a(b3), self.branch3x3_2b(b3),
             self.branch3x3dbl_3a(bd), self.branch3x3dbl_3b(bd), self.branch_pool(pooled)],
            axis=-1,
        )

    def get_config(self) -> dict:
        return {**super().get_config(), "pool": self.pool}


@keras.saving.register_keras_serializable(package="tf_stylegan2")
class InceptionV3(keras.Model):
    """The FID Inception-v3 (``inception-2015-12-05``), NHWC.

    Shapes: ``[N, 299, 299, 3]`` float32 from :func:`preprocess.inception_input` ->
    ``{"pool3": [N, 2048], "logits": [N, 1008]}`` (logits without the output bias).
    """

    def __init__(self, **kwargs):
        kwargs.setdefault("dtype", _FLOAT)
        super().__init__(**kwargs)
        self.Conv2d_1a_3x3 = ConvBN(3, 32, 3, strides=2, name="Conv2d_1a_3x3")
        self.Conv2d_2a_3x3 = ConvBN(32, 32, 3, name="Conv2d_2a_3x3")
        self.Conv2d_2b_3x3 = ConvBN(32, 64, 3, padding="same", name="Conv2d_2b_3x3")
        self.Conv2d_3b_1x1 = ConvBN(64, 80, 1, name="Conv2d_3b_1x1")
        self.Conv2d_4a_3x3 = ConvBN(80, 192, 3, name="Conv2d_4a_3x3")
        self.Mixed_5b = InceptionA(192, 32, name="Mixed_5b")
        self.Mixed_5c = InceptionA(256, 64, name="Mixed_5c")
        self.Mixed_5d = InceptionA(288, 64, name="Mixed_5d")
        self.Mixed_6a = InceptionB(288, name="Mixed_6a")
        self.Mixed_6b = InceptionC(768, 128, name="Mixed_6b")
        self.Mixed_6c = InceptionC(768, 160, name="Mixed_6c")
        self.Mixed_6d = InceptionC(768, 160, name="Mixed_6d")
        self.Mixed_6e = InceptionC(768, 192, name="Mixed_6e")
        self.Mixed_7a = InceptionD(768, name="Mixed_7a")
        self.Mixed_7b = InceptionE(1280, "avg", name="Mixed_7b")
        self.Mixed_7c = InceptionE(2048, "max", name="Mixed_7c")
        self.fc_weight = self.add_weight(name="fc_weight", shape=(POOL3_DIM, NUM_CLASSES), initializer="zeros")
        self.built = True

    STEM = ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "Conv2d_3b_1x1", "Conv2d_4a_3x3")
    BLOCKS = ("Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d",
              "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c")

    def call(self, x: tf.Tensor) -> Dict[str, tf.Tensor]:
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = tf.nn.max_pool2d(x, 3, 2, "VALID")
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = tf.nn.max_pool2d(x, 3, 2, "VALID")
        for name in self.BLOCKS:
            x = getattr(self, name)(x)
        pool3 = tf.reduce_mean(x, axis=[1, 2])
        return {"pool3": pool3, "logits": tf.matmul(pool3, self.fc_weight)}

    def conv_units(self) -> Iterator[Tuple[str, ConvBN]]:
        """(torchvision name, unit) for every ConvBN, e.g. ``("Mixed_5b.branch1x1", ...)``."""
        for name in self.STEM:
            yield name, getattr(self, name)
        for block in self.BLOCKS:
            for unit_name, unit in getattr(self, block).units():
                yield f"{block}.{unit_name}", unit


def expected_shapes(model: InceptionV3) -> Dict[str, Tuple[int, ...]]:
    """Torch-layout shapes of every tensor the model takes, keyed by pytorch-fid's names."""
    shapes = {}
    for name, unit in model.conv_units():
        kh, kw = unit.kernel_size
        shapes[f"{name}.conv.weight"] = (unit.filters, unit.in_channels, kh, kw)
        for p in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"{name}.bn.{p}"] = (unit.filters,)
    shapes["fc.weight"] = (NUM_CLASSES, POOL3_DIM)
    return shapes


def load_torch_weights(model: InceptionV3, state: Mapping[str, np.ndarray], source: str = "weights") -> None:
    """Assigns a pytorch-fid-named state dict (torch layouts: conv ``[out, in, kh, kw]``, fc
    ``[1008, 2048]``) to ``model``. Missing tensors or wrong shapes are a UserError naming
    ``source`` and the key; ``bn.weight`` may be absent (the 2015 graph has no BN scale: ones)."""
    tensors = checked_tensors(state, expected_shapes(model), source, "the FID Inception-v3", optional=(".bn.weight",))
    for name, unit in model.conv_units():
        unit.conv.kernel.assign(np.transpose(tensors[f"{name}.conv.weight"], (2, 3, 1, 0)))
        gamma = tensors.get(f"{name}.bn.weight")
        unit.bn.gamma.assign(np.ones(unit.filters, np.float32) if gamma is None else gamma)
        unit.bn.beta.assign(tensors[f"{name}.bn.bias"])
        unit.bn.moving_mean.assign(tensors[f"{name}.bn.running_mean"])
        unit.bn.moving_variance.assign(tensors[f"{name}.bn.running_var"])
    model.fc_weight.assign(tensors["fc.weight"].T)
