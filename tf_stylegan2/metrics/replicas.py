"""Metric work split over the replicas of a distribution strategy, results in one global order.

Every metric cuts its work into numbered batches (real images in dataset order, generated images in
groups whose random numbers are a function of the group's number alone). Round ``j`` of
:class:`ReplicaMap` gives batch ``j * R + r`` to replica ``r`` of ``R``; the outputs come back in
batch order. So the images, the features and every result are the same for any replica count, as
stylegan2-ada's metrics make them by interleaving the ranks' features.
"""

from __future__ import annotations

from typing import Any, Callable, List, Optional, Sequence

import numpy as np
import tensorflow as tf


class ReplicaMap:
    """Runs ``fn(*arrays)`` (a TF-traceable function of one batch) on every replica of ``strategy``.

    Args:
      fn: per-replica function; its outputs are tensors or nests of tensors.
      strategy: a single-machine strategy (e.g. ``MirroredStrategy``); None runs on the default device.
    """

    def __init__(self, fn: Callable[..., Any], strategy: Optional[tf.distribute.Strategy] = None):
        self.strategy = strategy or tf.distribute.get_strategy()
        self.num_replicas = self.strategy.num_replicas_in_sync
        run = self.strategy.run
        self._step = tf.function(lambda *args: run(fn, args=args), reduce_retracing=True)

    def __call__(self, batches: Sequence[Sequence[np.ndarray]]) -> List[Any]:
        """``batches``: at most ``num_replicas`` tuples of arrays, one per replica; returns the
        outputs (numpy) of each, in the same order. Missing replicas repeat the last batch and
        their outputs are dropped."""
        if not 0 < len(batches) <= self.num_replicas:
            raise ValueError(f"need 1 to {self.num_replicas} batches per round, got {len(batches)}")
        padded = list(batches) + [batches[-1]] * (self.num_replicas - len(batches))
        args = [
            self.strategy.experimental_distribute_values_from_function(
                lambda ctx, i=i: tf.constant(padded[ctx.replica_id_in_sync_group][i])
            )
            for i in range(len(padded[0]))
        ]
        out = self._step(*args)
        local = self.strategy.experimental_local_results
        return [tf.nest.map_structure(lambda v: local(v)[r].numpy(), out) for r in range(len(batches))]


def rounds(num_batches: int, num_replicas: int) -> List[List[int]]:
    """Batch numbers of each round: ``[[0, .., R-1], [R, .., 2R-1], ...]``, the last one shorter."""
    return [list(range(s, min(s + num_replicas, num_batches))) for s in range(0, num_batches, num_replicas)]
