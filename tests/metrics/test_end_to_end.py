"""The metrics on the real feature networks with random weights: Inception read from a torch.save
file through load_networks (the runners' path), VGG16 + LPIPS built from random state dicts; the
records name the weights, the features are the detectors' own."""

import dataclasses
import hashlib
import os
import sys

import numpy as np
import pytest
import tensorflow as tf

from tf_stylegan2.data import open_dataset
from tf_stylegan2.metrics import MetricOptions, detectors, evaluate, kid_from_features, parse_metric, preprocess, \
    stats
from tf_stylegan2.metrics.suite import FeatureNetworks, load_networks
from metric_helpers import random_dataset, tiny_generator
from tests_data_helpers import write_zip
import random_weights

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "official"))
import torch_writer as tw  # noqa: E402

QUIET = dict(log=lambda line: None)


def small(name, count):
    """A metric's definition with fewer generated images (the seconds a test has)."""
    return dataclasses.replace(parse_metric(name), num_gen=count)


def test_inception_metrics_from_a_weights_file(tmp_path):
    data = tw.zip_bytes(tw.state_dict({k: tw.array_tensor(v) for k, v in random_weights.inception_state().items()}))
    path = tmp_path / "pt_inception-2015-12-05-6726825d.pth"
    path.write_bytes(data)
    nets = load_networks([parse_metric("fid50k_full")], inception=str(path))
    G = tiny_generator(resolution=16)
    ds = open_dataset(write_zip(tmp_path / "data", random_dataset(8, resolution=16).images(range(8))))
    opts = MetricOptions(ds, nets, cache_dir=str(tmp_path / "cache"), batch_size=4, **QUIET)
    # No FID here: a 2048-d matrix square root of these rank-deficient covariances takes minutes on
    # two cores (test_suite.py checks FID against fid_from_features on small features).
    records = evaluate(G, [small("kid50k_full", 12), small("is50k", 10)], opts)
    assert records[0]["detector"] == {"network": "inception-2015-12-05", "file": "pt_inception-2015-12-05-6726825d.pth",
                                      "sha256": hashlib.sha256(data).hexdigest(), "format": "torch-zip"}
    values = {k: v for r in records for k, v in r["results"].items()}
    assert all(np.isfinite(v) for v in values.values()) and values["is50k_mean"] >= 1, values

    # Real features: Inception of the dataset's images as stored. Generated: Inception of
    # float_to_uint8 (NVIDIA's rule) of G's images for the latents and noise of group 0, 1, 2.
    real = nets.inception(ds.images(range(8)))["pool3"].numpy()
    z, _, noise = stats.latent_groups(G, None, 0, range(3), 4)
    images = [preprocess.float_to_uint8(G(tf.constant(z[g]), noise_mode="random", noise_seed=tf.constant(noise[g])))
              for g in range(3)]
    fake = nets.inception(tf.concat(images, axis=0))["pool3"].numpy()
    # KID reads every feature row of both sides; the cache holds the reals' rows and sums.
    assert values["kid50k_full"] == pytest.approx(kid_from_features(real, fake), rel=1e-4, abs=1e-6)
    cached = os.listdir(tmp_path / "cache")  # keyed by the file's sha256 (tests/metrics/test_stats.py: the key)
    assert len(cached) == 1 and cached[0].startswith("data-inception-pool3-")
    with np.load(tmp_path / "cache" / cached[0]) as f:
        np.testing.assert_allclose(f["features"], real, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(f["sum"], real.astype(np.float64).sum(axis=0), rtol=1e-5, atol=1e-5)


def test_vgg16_metrics():
    identity = {"network": "vgg16", "file": "random", "sha256": "0" * 64, "format": "state dict"}
    vgg = detectors.build_vgg16(random_weights.vgg16_state(), identity, lpips_tensors=random_weights.lpips_state())
    G, ds = tiny_generator(resolution=16), random_dataset(8, resolution=16)
    opts = MetricOptions(ds, FeatureNetworks(vgg16=vgg), cache_dir=None, batch_size=8, **QUIET)
    records = evaluate(G, [small("pr50k3_full", 8), small("ppl2_wend", 4)], opts)
    precision, recall = records[0]["results"].values()
    assert 0 <= precision <= 1 and 0 <= recall <= 1
    assert records[1]["results"]["ppl2_wend"] > 0 and records[1]["detector"] == identity
