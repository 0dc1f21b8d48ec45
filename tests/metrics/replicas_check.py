"""Run as a script (tests/metrics/test_replicas.py does): evaluates metrics, feature statistics and
path lengths of a tiny generator on one replica and on two (two logical CPUs) and prints, as JSON,
the largest differences between the two and both sets of metric records.

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

from metric_helpers import StandInInception, StandInVGG16, random_dataset, tiny_generator  # noqa: E402
from tf_stylegan2.metrics import MetricOptions, evaluate  # noqa: E402
from tf_stylegan2.metrics.perceptual_path_length import path_lengths  # noqa: E402
from tf_stylegan2.metrics.stats import dataset_stats, generator_stats  # noqa: E402
from tf_stylegan2.metrics.suite import FeatureNetworks  # noqa: E402


def run(strategy):
    G, ds = tiny_generator(c_dim=2), random_dataset(45, c_dim=2)
    networks = FeatureNetworks(inception=StandInInception(), vgg16=StandInVGG16())
    quiet = dict(strategy=strategy, log=lambda line: None)
    detector = networks.detector("pool3")
    arrays = {
        "generated": generator_stats(G, detector, num_items=75, labels=ds.labels, capture_all=True, batch_size=8,
                                     **quiet).features(),
        "real": dataset_stats(ds, detector, capture_all=True, batch_size=4, **quiet).features(),
        "ppl": path_lengths(G, networks.vgg16.lpips, num_samples=30, space="z", sampling="full", labels=ds.labels,
                            groups_per_call=2, **quiet),
    }
    opts = MetricOptions(ds, networks, cache_dir=None, batch_size=16, **quiet)
    return arrays, evaluate(G, ["fid1k_full", "pr1k3_full"], opts)


def main():
    one, one_records = run(None)
    two, two_records = run(tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))
    diff = {k: float(np.max(np.abs(one[k] - two[k]))) if one[k].shape == two[k].shape else "shape" for k in one}
    print(json.dumps({"diff": diff, "records": [one_records, two_records]}))


if __name__ == "__main__":
    main()
