"""Run as a script (tests/train/test_distributed.py does): ``replicas_check.py PL_DECAY ITERATIONS
[AUGPIPE]`` trains the same tiny model from the same initial weights and data on one replica and on
two (two logical CPUs), and prints as JSON the largest weight differences between the two afterwards.
With AUGPIPE, D's images are augmented with that pipeline and an adaptive p.

A script: see tests/logical_cpus.py.
"""

import json
import os
import sys
from typing import Optional

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.dirname(TESTS), TESTS]  # the repository root and tests/, as pytest's pythonpath
import logical_cpus  # noqa: E402

logical_cpus.split(2)
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

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
    p = [float(x) for v in state.augment.variables() for x in np.ravel(v.numpy())] if state.augment else []
    return weights, float(state.pl_mean.numpy()), stats, p


def main(pl_decay: float, iterations: int, augpipe: Optional[str]):
    # Synthesis noise is drawn per replica and the minibatch-std groups are formed per replica (as in
    # stylegan2-ada), so both are taken out: group size 1, no noise. Everything else is per sample.
    # Augmentation: p starts at 0.5 and moves by 0.1 every 2 minibatches.
    ada = dict(augment_pipe=augpipe, augment_p=0.5, ada_target=0.6, ada_interval=2, ada_kimg=0.16) if augpipe else {}
    cfg = tiny_config(8, c_dim=3, g={"use_noise": False}, d={"mbstd_group_size": 1}, batch_size=8,
                      pl_decay=pl_decay, pl_batch_shrink=1, g_reg_interval=2, d_reg_interval=2, **ada)
    dataset = random_dataset(24, c_dim=3)
    one = train(["/cpu:0"], cfg, dataset, iterations)
    two = train(["/cpu:0", "/cpu:1"], cfg, dataset, iterations)
    diff = {name: max(float(np.max(np.abs(a - b))) for a, b in zip(one[0][name], two[0][name])) for name in one[0]}
    print(json.dumps({"diff": diff, "pl_mean": [one[1], two[1]], "stats": [one[2], two[2]],
                      "augment": [one[3], two[3]]}))


if __name__ == "__main__":
    main(float(sys.argv[1]), int(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else None)
