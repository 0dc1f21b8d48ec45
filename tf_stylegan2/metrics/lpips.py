"""LPIPS v0.1, VGG variant (Zhang et al., "The Unreasonable Effectiveness of Deep Features as a
Perceptual Metric", CVPR 2018): the distance behind the perceptual path length.

For each of VGG16's five ReLU stages (relu1_2 .. relu5_3) the activations are normalised to unit
length along channels, the two images' normalised maps are subtracted and squared, a learned
non-negative weight per channel sums them (lpips' ``lin0..lin4``, 1x1 convolutions without bias),
and the result is averaged over pixels; the five stage values add up to the distance. Inputs go
through lpips' ScalingLayer first (``preprocess.lpips_input``).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import keras
import numpy as np
import tensorflow as tf

from tf_stylegan2.fileio import UserError
from tf_stylegan2.metrics.vgg16 import STAGES

CHANNELS = tuple(stage[-1] for stage in STAGES)  # 64, 128, 256, 512, 512
NORM_EPSILON = 1e-10  # lpips.normalize_tensor adds it to the norm (not under the square root)
_FLOAT = "float32"


@keras.saving.register_keras_serializable(package="tf_stylegan2")
class LPIPSHead(keras.layers.Layer):
    """The learned part of LPIPS on top of the VGG16 stages.

    Shapes: two lists of five stage maps ``[N, H_k, W_k, C_k]`` (``VGG16.stages``) -> ``[N]``.
    Weights: ``lin0 .. lin4``, ``[C_k]`` each.
    """

    def __init__(self, **kwargs):
        kwargs.setdefault("dtype", _FLOAT)
        super().__init__(**kwargs)
        self.lins = [
            self.add_weight(name=f"lin{k}", shape=(c,), initializer="ones") for k, c in enumerate(CHANNELS)
        ]
        self.built = True

    def call(self, stages_a: Sequence[tf.Tensor], stages_b: Sequence[tf.Tensor]) -> tf.Tensor:
        total = 0.0
        for a, b, w in zip(stages_a, stages_b, self.lins):
            diff = tf.square(_unit_normalize(a) - _unit_normalize(b))
            total += tf.reduce_mean(tf.tensordot(diff, w, axes=1), axis=[1, 2])
        return total


    def features(self, stages: Sequence[tf.Tensor]) -> tf.Tensor:
        """``[N, D]``: the stages unit-normalised along channels, scaled by ``sqrt(lin_k / (H_k W_k))``
        and concatenated, so that the squared Euclidean distance of two images' vectors is their
        LPIPS distance (what NVIDIA's ``vgg16(..., return_lpips=True)`` returns for its projector)."""
        n = tf.shape(stages[0])[0]
        parts = []
        for x, w in zip(stages, self.lins):
            area = tf.cast(tf.shape(x)[1] * tf.shape(x)[2], tf.float32)
            parts.append(tf.reshape(_unit_normalize(x) * tf.sqrt(tf.convert_to_tensor(w) / area), [n, -1]))
        return tf.concat(parts, axis=1)


def _unit_normalize(x: tf.Tensor) -> tf.Tensor:
    return x / (tf.sqrt(tf.reduce_sum(tf.square(x), axis=-1, keepdims=True)) + NORM_EPSILON)


def load_weights(head: LPIPSHead, lins: Sequence[np.ndarray], source: str = "weights") -> None:
    """Assigns the five per-channel weight vectors; each may carry singleton axes (lpips stores
    ``[1, C, 1, 1]``). A wrong size is a UserError naming ``source``."""
    for k, (var, w) in enumerate(zip(head.lins, lins)):
        w = np.asarray(w, np.float32)
        if w.size != var.shape[0] or sorted(w.shape)[-1] != w.size:
            raise UserError(
                f"{source}: LPIPS layer {k} has shape {list(w.shape)}, expected {CHANNELS[k]} channels"
            )
        var.assign(w.reshape(-1))


def lpips_package_lins(state: Mapping[str, np.ndarray], source: str) -> Sequence[np.ndarray]:
    """The five weight tensors of the lpips package's ``weights/v0.1/vgg.pth``
    (``lin{k}.model.1.weight``, ``[1, C, 1, 1]``)."""
    keys = [f"lin{k}.model.1.weight" for k in range(len(CHANNELS))]
    missing = [k for k in keys if k not in state]
    if missing:
        raise UserError(f"{source}: not the lpips package's LPIPS weights (missing {missing[0]}; "
                        "expected weights/v0.1/vgg.pth of the lpips package)")
    return [state[k] for k in keys]
