"""How images reach the feature networks, exactly as NVIDIA's metrics feed them.

* Generated images (float, nominally [-1, 1]) become uint8 with stylegan2-ada-pytorch's rule
  ``(x * 127.5 + 128).clamp(0, 255).to(torch.uint8)`` (``metrics/metric_utils.py``): the cast
  truncates, so this is round-half-up of ``x * 127.5 + 127.5``, not ``rint``.
* Real images are fed as stored, at their native resolution; grayscale is tiled to RGB.
* Resizing uses TF1's bilinear rule (``tf.compat.v1.image.resize_bilinear`` with
  ``align_corners=False, half_pixel_centers=False``: output pixel ``i`` samples input position
  ``i * in_size / out_size``), as the 2015 Inception graph does in its ``ResizeBilinear`` node and
  as NVIDIA's TorchScript detectors emulate. ``tf.image.resize`` samples at half-pixel centres
  instead and moves Inception's pool3 features by percents.
* Inception normalises with its graph's ``(x - 128) / 128``; VGG16 with torchvision's ImageNet
  mean and standard deviation on 0..255 values; LPIPS with the lpips package's ``ScalingLayer`` on
  [-1, 1] input, which is the same normalisation written for [-1, 1].
"""

from __future__ import annotations

from typing import Sequence, Tuple

import tensorflow as tf

INCEPTION_SIZE = 299  # the 2015 graph's ResizeBilinear target
VGG16_SIZE = 224  # torchvision's VGG16 classifier expects 7x7 after five 2x poolings

# torchvision's ImageNet statistics for [0, 1] images.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# The lpips package's ScalingLayer for [-1, 1] images (lpips/lpips.py): shift = 1 - 2 * mean,
# scale = 2 * std, to three decimals.
LPIPS_SHIFT = (-0.030, -0.088, -0.188)
LPIPS_SCALE = (0.458, 0.448, 0.450)


def float_to_uint8(images: tf.Tensor) -> tf.Tensor:
    """Generated images in [-1, 1] -> uint8 by NVIDIA's rule ``clip(x * 127.5 + 128, 0, 255)``,
    truncated toward zero (stylegan2-ada-pytorch ``metric_utils.compute_feature_stats_for_generator``).

    Shapes: any -> the same, uint8.
    """
    x = tf.cast(images, tf.float32)
    return tf.cast(tf.clip_by_value(x * 127.5 + 128.0, 0.0, 255.0), tf.uint8)


def to_rgb(images: tf.Tensor) -> tf.Tensor:
    """Tiles single-channel NHWC images to three channels (NVIDIA's ``repeat([1, 3, 1, 1])``);
    three-channel images pass through. Other channel counts are a ValueError."""
    images = tf.convert_to_tensor(images)
    if images.shape.rank != 4:
        raise ValueError(f"expected NHWC images [N, H, W, C], got shape {images.shape.as_list()}")
    channels = images.shape[-1]
    if channels == 1:
        return tf.tile(images, [1, 1, 1, 3])
    if channels != 3:
        raise ValueError(f"expected 1 or 3 channels, got {channels} (shape {images.shape.as_list()})")
    return images


def resize_bilinear_tf1(images: tf.Tensor, size: Sequence[int]) -> tf.Tensor:
    """TF1 bilinear resize (``align_corners=False, half_pixel_centers=False``) to ``size``.

    Shapes: ``[N, H, W, C]`` (any real dtype) -> ``[N, size[0], size[1], C]`` float32. Resizing to
    the input's own size is the identity.
    """
    # The kernel behind tf.compat.v1.image.resize_bilinear, without its deprecation warning.
    return tf.raw_ops.ResizeBilinear(
        images=tf.cast(images, tf.float32), size=list(size), align_corners=False, half_pixel_centers=False
    )


def inception_input(images: tf.Tensor) -> tf.Tensor:
    """uint8 RGB images of any size -> the 2015 Inception graph's input: TF1 bilinear resize to
    299x299, then ``(x - 128) / 128``.

    Shapes: ``[N, H, W, 3]`` uint8 -> ``[N, 299, 299, 3]`` float32.
    """
    x = resize_bilinear_tf1(images, (INCEPTION_SIZE, INCEPTION_SIZE))
    return (x - 128.0) / 128.0


def vgg16_input(images: tf.Tensor) -> tf.Tensor:
    """uint8 RGB images of any size -> VGG16's classifier input: TF1 bilinear resize to 224x224,
    then torchvision's normalisation of 0..255 values, ``(x - 255 mean) / (255 std)`` (as NVIDIA's
    ``vgg16.pt`` with ``return_features=True`` and torch-fidelity's ``FeatureExtractorVGG16``).

    Shapes: ``[N, H, W, 3]`` uint8 -> ``[N, 224, 224, 3]`` float32.
    """
    x = resize_bilinear_tf1(images, (VGG16_SIZE, VGG16_SIZE))
    return (x - _row(IMAGENET_MEAN, 255.0)) / _row(IMAGENET_STD, 255.0)


def lpips_input(images: tf.Tensor) -> tf.Tensor:
    """Float images in [-1, 1] -> the VGG16 trunk's input by lpips' ScalingLayer,
    ``(x - shift) / scale``; no resizing (LPIPS compares images at their own size).

    Shapes: ``[N, H, W, 3]`` -> the same, float32.
    """
    x = tf.cast(images, tf.float32)
    return (x - _row(LPIPS_SHIFT)) / _row(LPIPS_SCALE)


def _row(values: Tuple[float, float, float], gain: float = 1.0) -> tf.Tensor:
    return tf.constant([v * gain for v in values], tf.float32)
