"""Run as a script (tests/metrics/test_feature_networks.py does): calls the detectors inside
``strategy.run`` on two logical CPUs, each replica taking half of the batch, and prints as JSON
the largest relative difference from one direct call on the whole batch.

A script: see tests/logical_cpus.py.
"""

import json
import os
import sys

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.dirname(TESTS), TESTS]  # the repository root and tests/, as pytest's pythonpath
import logical_cpus  # noqa: E402

logical_cpus.split(2)
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import random_weights  # noqa: E402
from tf_stylegan2.metrics import detectors  # noqa: E402


def flat(outputs: dict) -> dict:
    """{"a": {"b": t}, "c": t} -> {"a/b": t, "c": t}"""
    out = {}
    for k, v in outputs.items():
        out.update({f"{k}/{kk}": vv for kk, vv in flat(v).items()} if isinstance(v, dict) else {k: v})
    return out


def main() -> None:
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    rng = np.random.default_rng(11)
    images = rng.integers(0, 256, (4, 24, 20, 3), dtype=np.uint8)
    a = rng.uniform(-1, 1, (4, 16, 24, 3)).astype(np.float32)
    b = rng.uniform(-1, 1, (4, 16, 24, 3)).astype(np.float32)

    inception_state = random_weights.inception_state()
    outside = detectors.build_inception(inception_state, {"file": "random"})
    with strategy.scope():  # mirrored weights, one copy per device
        inside = detectors.build_inception(inception_state, {"file": "random"})
    vgg = detectors.build_vgg16(random_weights.vgg16_state(), {"file": "random"}, random_weights.lpips_state())

    batch = next(iter(strategy.experimental_distribute_dataset(
        tf.data.Dataset.from_tensor_slices((images, a, b)).batch(len(images)))))

    @tf.function
    def step(x, u, v):
        return {"inception_outside": outside(x), "inception_inside": inside(x),
                "vgg16_features": vgg.features(x), "lpips": vgg.lpips(u, v)}

    per_replica = [flat(r) for r in strategy.experimental_local_results(strategy.run(step, args=batch))]
    split = {k: tf.concat([r[k] for r in per_replica], axis=0) for k in per_replica[0]}
    whole = {"inception_outside": outside(images), "inception_inside": inside(images),
             "vgg16_features": vgg.features(images), "lpips": vgg.lpips(a, b)}
    whole = flat(whole)
    assert split.keys() == whole.keys()
    diff = {}
    for name, ref in whole.items():
        got, ref = split[name].numpy(), ref.numpy()
        assert got.shape == ref.shape, (name, got.shape, ref.shape)
        diff[name] = float(np.max(np.abs(got - ref)) / np.max(np.abs(ref)))
    print(json.dumps({"replicas": strategy.num_replicas_in_sync, "diff": diff}))


if __name__ == "__main__":
    main()
