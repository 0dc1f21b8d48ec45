"""The mapping network: latent z (and label c) to the intermediate latent w."""

from __future__ import annotations

from typing import Optional, Union

import keras
import tensorflow as tf

from custom_ops import get_activation
from layers.base import StyleGANLayer
from layers.equalized import EqualizedDense

Scalar = Union[float, tf.Tensor]


def normalize_2nd_moment(x: tf.Tensor, eps: float = 1e-8) -> tf.Tensor:
    """Scales each row of ``[N, D]`` to unit mean square (pixel norm over features)."""
    return x * tf.math.rsqrt(tf.reduce_mean(tf.square(x), axis=1, keepdims=True) + eps)


@keras.saving.register_keras_serializable(package="tf_stylegan2")
class MappingNetwork(StyleGANLayer):
    """``num_layers`` equalized fully connected layers with learning-rate multiplier 0.01.

    Shapes: ``z [N, z_dim], c [N, c_dim] -> ws [N, num_ws, w_dim]`` (``[N, w_dim]`` if num_ws is None).

    z and the label embedding are each normalized to unit second moment and concatenated. When
    ``w_avg_beta`` is set the layer keeps ``w_avg``, the moving average of w that the truncation
    trick pulls towards: ``w' = w_avg + psi * (w - w_avg)``, on the first ``truncation_cutoff`` ws
    only when a cutoff is given. ``psi = 0`` returns ``w_avg``; ``psi = 1`` leaves w unchanged.
    The training step moves the average with :meth:`moved_w_avg`, which returns it for the step to
    assign.

    Args:
      z_dim: latent width (0 = no latent, as in the discriminator's label mapping).
      c_dim: label width (0 = unconditional).
      w_dim: output width.
      num_ws: how many copies of w to broadcast (one per synthesis layer), None = no broadcast.
      num_layers: depth; 0 passes the normalized input through (its width must be w_dim), as
        stylegan2-ada's TF discriminator does with its label embedding by default.
      embed_features: label embedding width (default w_dim).
      layer_features: hidden width (default w_dim).
      activation: hidden activation.
      lr_multiplier: learning-rate multiplier of every layer.
      w_avg_beta: decay of the w average (None = do not track).
    """

    def __init__(
        self,
        z_dim: int,
        c_dim: int,
        w_dim: int,
        num_ws: Optional[int],
        num_layers: int = 8,
        embed_features: Optional[int] = None,
        layer_features: Optional[int] = None,
        activation: str = "lrelu",
        lr_multiplier: float = 0.01,
        w_avg_beta: Optional[float] = 0.995,
        **kwargs,
    ):
        super().__init__(**kwargs)
        get_activation(activation)
        if z_dim <= 0 and c_dim <= 0:
            raise ValueError("the mapping network needs a latent (z_dim > 0) or a label (c_dim > 0)")
        if num_layers < 0:
            raise ValueError(f"num_layers must be >= 0, got {num_layers}")
        self.z_dim = int(z_dim)
        self.c_dim = int(c_dim)
        self.w_dim = int(w_dim)
        self.num_ws = None if num_ws is None else int(num_ws)
        self.num_layers = int(num_layers)
        self.embed_features = None if embed_features is None else int(embed_features)
        self.layer_features = None if layer_features is None else int(layer_features)
        self.activation = activation
        self.lr_multiplier = float(lr_multiplier)
        self.w_avg_beta = None if w_avg_beta is None else float(w_avg_beta)

        embed = (self.embed_features or self.w_dim) if self.c_dim > 0 else 0
        hidden = self.layer_features or self.w_dim
        features = [self.z_dim + embed] + [hidden] * (self.num_layers - 1) + [self.w_dim]
        if self.num_layers == 0 and self.z_dim + embed != self.w_dim:
            raise ValueError(f"without layers the mapping's input width {self.z_dim + embed} must equal w_dim={self.w_dim}")
        policy = self.dtype_policy
        self.embed = EqualizedDense(self.c_dim, embed, name="embed", dtype=policy) if self.c_dim > 0 else None
        self.fcs = [
            EqualizedDense(
                features[i], features[i + 1], activation=activation, lr_multiplier=lr_multiplier,
                name=f"fc{i}", dtype=policy,
            )
            for i in range(self.num_layers)
        ]
        self.w_avg = None
        if self.num_ws is not None and self.w_avg_beta is not None:
            # Replicas average their updates (MirroredStrategy): mean of lerps = lerp of the mean.
            self.w_avg = self.add_weight(
                name="w_avg", shape=(self.w_dim,), initializer="zeros", trainable=False, aggregation="mean"
            )
        self.built = True

    def call(
        self,
        z: Optional[tf.Tensor],
        c: Optional[tf.Tensor] = None,
        truncation_psi: Scalar = 1.0,
        truncation_cutoff: Optional[Union[int, tf.Tensor]] = None,
    ) -> tf.Tensor:
        parts = []
        if self.z_dim > 0:
            self.check_shape(z, [None, self.z_dim], "z")
            parts.append(normalize_2nd_moment(tf.cast(z, tf.float32)))
        if self.c_dim > 0:
            self.check_shape(c, [None, self.c_dim], "label c")
            parts.append(normalize_2nd_moment(self.embed(tf.cast(c, tf.float32))))
        x = self.to_compute(parts[0] if len(parts) == 1 else tf.concat(parts, axis=1))
        for fc in self.fcs:
            x = fc(x)
        x = tf.cast(x, tf.float32)
        if self.num_ws is None:
            return x
        ws = tf.tile(x[:, tf.newaxis, :], [1, self.num_ws, 1])
        if isinstance(truncation_psi, (int, float)) and truncation_psi == 1:
            return ws
        if self.w_avg is None:
            raise ValueError(f"{self.name}: truncation needs w_avg tracking (w_avg_beta is None)")
        return self.truncate(ws, truncation_psi, truncation_cutoff)

    def truncate(
        self, ws: tf.Tensor, truncation_psi: Scalar, truncation_cutoff: Optional[Union[int, tf.Tensor]] = None
    ) -> tf.Tensor:
        """Pulls ``ws [N, num_ws, w_dim]`` towards ``w_avg`` by ``psi``, on the first ``cutoff`` ws."""
        w_avg = tf.convert_to_tensor(self.w_avg)
        psi = tf.cast(truncation_psi, tf.float32)
        truncated = w_avg + psi * (ws - w_avg)
        if truncation_cutoff is None:
            return truncated
        layer_mask = tf.range(self.num_ws) < tf.cast(truncation_cutoff, tf.int32)
        return tf.where(layer_mask[tf.newaxis, :, tf.newaxis], truncated, ws)

    def moved_w_avg(self, w: tf.Tensor) -> tf.Tensor:
        """``w_avg`` moved towards the batch mean of ``w [N, w_dim]``: ``mean + beta (w_avg - mean)``.

        Returned rather than assigned, so that a training step can compute it inside an XLA
        cluster and assign it outside (under a distribution strategy the assignment averages the
        replicas' values, which needs a cross-replica merge XLA cannot hold).
        """
        if self.w_avg is None:
            raise ValueError(f"{self.name}: w_avg is not tracked (w_avg_beta is None or num_ws is None)")
        mean = tf.reduce_mean(tf.cast(w, tf.float32), axis=0)
        return mean + self.w_avg_beta * (tf.convert_to_tensor(self.w_avg) - mean)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "z_dim": self.z_dim,
            "c_dim": self.c_dim,
            "w_dim": self.w_dim,
            "num_ws": self.num_ws,
            "num_layers": self.num_layers,
            "embed_features": self.embed_features,
            "layer_features": self.layer_features,
            "activation": self.activation,
            "lr_multiplier": self.lr_multiplier,
            "w_avg_beta": self.w_avg_beta,
        }
