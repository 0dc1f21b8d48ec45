"""Run as a script (tests/train/test_distributed.py does): ``replicas_check.py PL_DECAY ITERATIONS``
trains the same tiny model from the same initial weights and data on one replica and on two (two
logical CPUs), and prints as JSON the largest weight differences between the two afterwards.

A script because logical devices must be configured before TensorFlow initialises, which the
test process has long done.
"""

import json
import os
import sys

import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(os.path.dirname(HERE))]
import numpy as np  # noqa: E402

from tf_stylegan2.train import inputs  # noqa: E402
from tf_stylegan2.train.state import create_state  # noqa: E402
from tf_stylegan2.train.step import Trainer  # noqa: E402
from train_helpers import random_dataset, tiny_config  # noqa: E402


def train(devices, cfg, dataset, iterations):
    strategy = tf.distribute.MirroredStrategy(devices)
    with strategy.scope():
        state = create_state(cfg, "float32", 0, False)
        trainer = Trainer(state, cfg.train, strategy)
    it = iter(inputs.distributed_samples(strategy, dataset, cfg.train.batch_size, use_labels=True, mirror=True,
                                         seed=1, start_image=0, z_dim=cfg.G.z_dim))
    stats = [{k: float(v) for k, v in trainer.iteration(next(it)).items()} for _ in range(iterations)]
    weights = {name: [v.numpy() for v in model.weights] for name, model in
               (("G", state.G), ("D", state.D), ("G_ema", state.G_ema))}
    return weights, float(state.pl_mean.numpy()), stats


def main(pl_decay: float, iterations: int):
    # Synthesis noise is drawn per replica and the minibatch-std groups are formed per replica (as in
    # stylegan2-ada), so both are taken out: group size 1, no noise. Everything else is per sample.
    cfg = tiny_config(8, c_dim=3, g={"use_noise": False}, d={"mbstd_group_size": 1}, batch_size=8,
                      pl_decay=pl_decay, pl_batch_shrink=1, g_reg_interval=2, d_reg_interval=2)
    dataset = random_dataset(24, c_dim=3)
    one = train(["/cpu:0"], cfg, dataset, iterations)
    two = train(["/cpu:0", "/cpu:1"], cfg, dataset, iterations)
    diff = {name: max(float(np.max(np.abs(a - b))) for a, b in zip(one[0][name], two[0][name])) for name in one[0]}
    print(json.dumps({"diff": diff, "pl_mean": [one[1], two[1]], "stats": [one[2], two[2]]}))


if __name__ == "__main__":
    main(float(sys.argv[1]), int(sys.argv[2]))
