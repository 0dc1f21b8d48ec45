"""StyleGAN2's loss terms as plain functions of the networks and a batch.

The terms and their constants are those of stylegan2-ada-pytorch's ``StyleGAN2Loss`` (itself the
TF1 release's ``G_logistic_ns_pathreg`` and ``D_logistic_r1``):

* generator: non-saturating logistic loss ``softplus(-D(G(z)))``;
* path length: ``(|J_w^T y| - a)^2`` with ``y ~ N(0, I) / sqrt(H W)`` and ``a`` the running mean of
  the lengths (decay 0.01), on ``1 / pl_batch_shrink`` of the batch;
* discriminator: ``softplus(D(G(z))) + softplus(-D(x))``;
* R1: ``gamma / 2 * |grad_x D(x)|^2`` on real images.

Every image D judges goes through ``augment`` first when one is given (stylegan2-ada's ``run_D``):
the discriminator augmentation, differentiable, so G's loss and R1 see through it.

Every function returns per-sample values ``[N]``: the training step sums them over its replica,
divides by the global batch and applies the phase's gain, so the result does not depend on how the
batch is split across devices. Nothing here reads a variable's value into a Python number or
assigns one: updated running averages are returned, and the step assigns them.
"""

from __future__ import annotations

from typing import Callable, Optional, Tuple

import tensorflow as tf

from tf_stylegan2.networks import Discriminator, Generator


Augment = Optional[Callable[[tf.Tensor], tf.Tensor]]


def _labels(model, c: Optional[tf.Tensor]) -> Optional[tf.Tensor]:
    """What a network's call takes as labels: None for unconditional models (the data's ``[N, 0]``)."""
    return c if model.c_dim else None


def run_D(D: Discriminator, img: tf.Tensor, c: tf.Tensor, augment: Augment = None) -> tf.Tensor:
    """D's logits ``[N]`` for ``img``, augmented first when ``augment`` is given."""
    if augment is not None:
        img = augment(img)
    return D(img, _labels(D, c))[:, 0]


def map_with_mixing(
    G: Generator, z: tf.Tensor, c: tf.Tensor, z_mix: Optional[tf.Tensor] = None, cutoff: Optional[tf.Tensor] = None
) -> Tuple[tf.Tensor, Optional[tf.Tensor]]:
    """Mapping with style mixing regularization.

    Returns ``ws [N, num_ws, w_dim]`` and the moved ``w_avg`` (None when G does not track it). With
    ``z_mix``, the ws from index ``cutoff`` on come from ``z_mix`` (``cutoff = num_ws`` mixes
    nothing), as stylegan2-ada draws it: one cutoff for the batch, in ``[1, num_ws)`` with the mixing
    probability. ``w_avg`` follows the main latents only.
    """
    ws = G.mapping(z, _labels(G, c))
    w_avg = G.mapping.moved_w_avg(ws[:, 0]) if G.mapping.w_avg is not None else None
    if z_mix is not None:
        ws_mix = G.mapping(z_mix, _labels(G, c))
        layer = tf.range(G.num_ws)[tf.newaxis, :, tf.newaxis]
        ws = tf.where(layer < tf.cast(cutoff, tf.int32), ws, ws_mix)
    return ws, w_avg


def generator_loss(D: Discriminator, fake: tf.Tensor, c: tf.Tensor,
                   augment: Augment = None) -> Tuple[tf.Tensor, tf.Tensor]:
    """Non-saturating logistic loss ``softplus(-D(fake))`` ``[N]``, and the logits ``[N]``."""
    logits = run_D(D, fake, c, augment)
    return tf.nn.softplus(-logits), logits


def path_lengths(
    G: Generator, ws: tf.Tensor, pl_noise: tf.Tensor, noise_seed: Optional[tf.Tensor] = None
) -> tf.Tensor:
    """``|J_w^T y|`` per sample ``[N]``: the norm of the gradient of ``sum(G.synthesis(ws) * y)``
    w.r.t. ``ws``, squared-summed over w's features and averaged over the ws.

    ``pl_noise`` (``y``) is ``[N, R, R, C]`` standard normal divided by ``sqrt(R * R)``. Call it
    under the tape that differentiates the penalty: the inner gradient is recorded for the outer one.
    """
    with tf.GradientTape() as tape:
        tape.watch(ws)
        img = G.synthesis(ws, noise_mode="random", noise_seed=noise_seed)
        projected = tf.reduce_sum(img * pl_noise)
    grads = tape.gradient(projected, ws)
    return tf.sqrt(tf.reduce_mean(tf.reduce_sum(tf.square(grads), axis=2), axis=1))


def path_length_penalty(lengths: tf.Tensor, pl_mean: tf.Tensor, decay: float) -> Tuple[tf.Tensor, tf.Tensor]:
    """``(lengths - a)^2`` ``[N]`` and ``a``, the running mean moved by ``decay`` towards the batch mean.

    As in stylegan2-ada, the penalty uses the already moved mean, held constant (no gradient).
    """
    moved = tf.stop_gradient(pl_mean + decay * (tf.reduce_mean(lengths) - pl_mean))
    return tf.square(lengths - moved), moved


def discriminator_fake_loss(D: Discriminator, fake: tf.Tensor, c: tf.Tensor,
                            augment: Augment = None) -> Tuple[tf.Tensor, tf.Tensor]:
    """``softplus(D(fake))`` ``[N]`` and the logits ``[N]``."""
    logits = run_D(D, fake, c, augment)
    return tf.nn.softplus(logits), logits


def discriminator_real_loss(D: Discriminator, real: tf.Tensor, c: tf.Tensor,
                            augment: Augment = None) -> Tuple[tf.Tensor, tf.Tensor]:
    """``softplus(-D(real))`` ``[N]`` and the logits ``[N]``."""
    logits = run_D(D, real, c, augment)
    return tf.nn.softplus(-logits), logits


def r1_penalty(D: Discriminator, real: tf.Tensor, c: tf.Tensor, augment: Augment = None) -> Tuple[tf.Tensor, tf.Tensor]:
    """``|grad_x D(A(x))|^2`` per real image ``[N]`` (multiply by ``gamma / 2``), and the logits ``[N]``:
    the gradient is taken w.r.t. the image before the augmentation ``A``, as in stylegan2-ada.

    Call it under the tape that differentiates the penalty w.r.t. D's weights (second order).
    """
    with tf.GradientTape() as tape:
        tape.watch(real)
        logits = run_D(D, real, c, augment)
        total = tf.reduce_sum(logits)
    grads = tape.gradient(total, real)
    return tf.reduce_sum(tf.square(grads), axis=[1, 2, 3]), logits
