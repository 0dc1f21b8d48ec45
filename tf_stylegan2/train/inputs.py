"""What each training sample carries besides its image, and how batches reach the replicas.

Every random number of training is a stateless function of the run's seed and a position, so a
resumed run, or the same run on another number of devices, draws the same numbers:

* per sample (keyed by its stream position ``p``, so by the image it comes with): the generator
  latents of the three generator-driven phases, their style-mixing latents, the labels of random
  dataset images for a conditional generator, and the path-length noise;
* per minibatch (keyed by ``batch_idx``): the style-mixing cutoff, one per phase as in
  stylegan2-ada, and the synthesis noise (also keyed by the replica);
* per image D sees (keyed by the sample's position and what the image is in which phase): the
  augmentation's parameters (:func:`augment_seeds`).
"""

from __future__ import annotations

from typing import Dict

import tensorflow as tf

from tf_stylegan2.data import ImageDataset

# The phases that generate images, in the order of their latents in a sample.
GEN_PHASES = ("Gmain", "Greg", "Dmain")
PHASE_INDEX = {phase: i for i, phase in enumerate(GEN_PHASES)}

_STREAMS = 16  # stateless seeds are [seed * _STREAMS + stream, counter]
_Z, _MIX_Z, _GEN_C, _PL_NOISE, _CUTOFF, _SYNTH_NOISE = 0, 1, 2, 3, 4, 8  # cutoff, noise: + PHASE_INDEX
_AUGMENT = 12
# The images D judges, each augmented with its own draws.
AUGMENTED = (("Gmain", "fake"), ("Dmain", "fake"), ("Dmain", "real"), ("Dreg", "real"))


def _seed(seed: tf.Tensor, stream: int, counter: tf.Tensor) -> tf.Tensor:
    seed = tf.cast(seed, tf.int64)
    return tf.stack([seed * _STREAMS + stream, tf.cast(counter, tf.int64)])


def sample_extras(seed: int, z_dim: int, num_images: int):
    """``extra`` for :meth:`ImageDataset.samples`: per sample ``gen_z`` and ``mix_z`` float32
    ``[len(GEN_PHASES), z_dim]`` and ``gen_c`` ``[len(GEN_PHASES), c_dim]`` (random images' labels)."""
    count = len(GEN_PHASES)

    def extra(position: tf.Tensor, labels: tf.Tensor) -> Dict[str, tf.Tensor]:
        index = tf.random.stateless_uniform([count], _seed(seed, _GEN_C, position), maxval=num_images, dtype=tf.int64)
        return {
            "gen_z": tf.random.stateless_normal([count, z_dim], _seed(seed, _Z, position)),
            "mix_z": tf.random.stateless_normal([count, z_dim], _seed(seed, _MIX_Z, position)),
            "gen_c": tf.gather(labels, index),
        }

    return extra


def path_length_noise(seed: tf.Tensor, positions: tf.Tensor, shape) -> tf.Tensor:
    """``[N, R, R, C]`` standard normal noise, each sample's from its own position, over ``sqrt(R * R)``."""
    noise = tf.map_fn(
        lambda p: tf.random.stateless_normal(shape, _seed(seed, _PL_NOISE, p)), positions,
        fn_output_signature=tf.float32,
    )
    return noise / float(shape[0] * shape[1]) ** 0.5


def augment_seeds(seed: tf.Tensor, positions: tf.Tensor, phase: str, kind: str) -> tf.Tensor:
    """int64 ``[N, 2]`` stateless seeds of the augmentation of the ``kind`` ('real' or 'fake') images
    of ``phase``, one per sample position: the same image is augmented alike on any replica count."""
    which = AUGMENTED.index((phase, kind))
    positions = tf.cast(positions, tf.int64)
    stream = tf.fill(tf.shape(positions), tf.cast(seed, tf.int64) * _STREAMS + _AUGMENT)
    return tf.stack([stream, positions * len(AUGMENTED) + which], axis=1)


def mixing_cutoff(seed: tf.Tensor, batch_idx: tf.Tensor, phase: str, num_ws: int, prob: float) -> tf.Tensor:
    """int32 scalar: with probability ``prob`` a cutoff uniform in ``[1, num_ws)``, else ``num_ws``."""
    key = _seed(seed, _CUTOFF + PHASE_INDEX[phase], batch_idx)
    draw = tf.random.stateless_uniform([2], key)
    cutoff = 1 + tf.cast(tf.floor(draw[0] * (num_ws - 1)), tf.int32)
    return tf.where(draw[1] < prob, tf.minimum(cutoff, num_ws - 1), num_ws)


def synthesis_noise_seed(seed: tf.Tensor, batch_idx: tf.Tensor, phase: str, replica: tf.Tensor) -> tf.Tensor:
    """int64 ``[2]`` seed of the synthesis noise of one replica in one phase of one minibatch."""
    key = _seed(seed, _SYNTH_NOISE + PHASE_INDEX[phase], batch_idx)
    return tf.cast(tf.random.experimental.stateless_fold_in(key, tf.cast(replica, tf.int64)), tf.int64)


def distributed_samples(
    strategy: tf.distribute.Strategy,
    dataset: ImageDataset,
    global_batch: int,
    *,
    use_labels: bool,
    mirror: bool,
    seed: int,
    start_image: int,
    z_dim: int,
):
    """The training stream as a distributed dataset: replica ``r`` of ``R`` gets global batch slots
    ``[r * B / R, (r + 1) * B / R)`` of every minibatch, with their :func:`sample_extras`.

    Each input pipeline (one per worker) reads only its replicas' slots; within a worker,
    ``distribute_datasets_from_function`` hands consecutive batches to the local replicas in order.
    """
    per_replica = global_batch // strategy.num_replicas_in_sync

    def make(context: tf.distribute.InputContext) -> tf.data.Dataset:
        local = context.num_replicas_in_sync // context.num_input_pipelines
        stream = dataset.samples(
            per_replica, use_labels=use_labels, mirror=mirror, seed=seed, start_image=start_image,
            global_batch=global_batch, shard_offset=context.input_pipeline_id * local * per_replica,
            shard_size=local * per_replica, extra=sample_extras(seed, z_dim, len(dataset)),
        )
        return stream.prefetch(tf.data.AUTOTUNE)

    options = tf.distribute.InputOptions(experimental_fetch_to_device=True)
    return strategy.distribute_datasets_from_function(make, options)
