"""The feature networks against the public reference implementations, on random weights.

``goldens/feature_networks.npz`` holds what torch-fidelity 0.4.0 (FID Inception pool3 and unbiased
logits; VGG16 fc2 after ReLU) and lpips 0.1.4 (LPIPS v0.1 VGG) computed with the weights of
``random_weights.py`` on the images stored beside them (``make_goldens.py`` wrote it; CI has no
torch). Tolerance: max |ours - reference| <= 1e-4 * max |reference| per output.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import random_weights
from tf_stylegan2.fileio import UserError
from tf_stylegan2.metrics import detectors

HERE = os.path.dirname(os.path.abspath(__file__))
GOLDENS = np.load(os.path.join(HERE, "goldens", "feature_networks.npz"))
RTOL = 1e-4


def rel_err(got, ref):
    return float(np.max(np.abs(np.asarray(got, np.float64) - ref)) / np.max(np.abs(ref)))


@pytest.fixture(scope="module")
def inception():
    return detectors.build_inception(random_weights.inception_state(), {"file": "random-inception"})


@pytest.fixture(scope="module")
def vgg_state():
    return random_weights.vgg16_state()


@pytest.fixture(scope="module")
def vgg(vgg_state):
    return detectors.build_vgg16(vgg_state, {"file": "random-vgg16", "lpips_file": "random-lpips"},
                                 random_weights.lpips_state())


def test_inception_matches_torch_fidelity(inception):
    out = inception(GOLDENS["inception_images"])
    assert set(out) == {"pool3", "logits"}
    assert out["pool3"].shape == (2, 2048) and out["logits"].shape == (2, 1008)
    assert out["pool3"].dtype == tf.float32 and out["logits"].dtype == tf.float32
    assert rel_err(out["pool3"], GOLDENS["inception_pool3"]) < RTOL
    assert rel_err(out["logits"], GOLDENS["inception_logits"]) < RTOL


def test_vgg16_features_match_torch_fidelity(vgg):
    fc2 = vgg.features(GOLDENS["vgg16_images"])
    assert fc2.shape == (2, 4096) and fc2.dtype == tf.float32
    assert rel_err(fc2, GOLDENS["vgg16_fc2"]) < RTOL


def test_lpips_matches_lpips_package(vgg):
    a, b = (GOLDENS[k].astype(np.float32) / 127.5 - 1 for k in ("lpips_a", "lpips_b"))
    d = vgg.lpips(a, b).numpy()
    assert d.shape == (3,)
    np.testing.assert_allclose(d, GOLDENS["lpips"], rtol=RTOL)
    # A distance: zero on equal images, symmetric.
    np.testing.assert_array_equal(vgg.lpips(a, a).numpy(), 0.0)
    np.testing.assert_allclose(vgg.lpips(b, a).numpy(), d, rtol=1e-6)


def test_batch_sizes_agree_and_trace_once(inception, vgg):
    # Inception runs at 299x299 whatever the input size: 9 images keep the test cheap (the
    # signature has no batch size; LPIPS below takes 64).
    rng = np.random.default_rng(5)
    images = rng.integers(0, 256, (9, 16, 16, 3), dtype=np.uint8)
    big = inception(images)
    for i in (0, 8):
        one = inception(images[i:i + 1])
        for k in ("pool3", "logits"):
            np.testing.assert_allclose(one[k].numpy()[0], big[k].numpy()[i], rtol=1e-5, atol=1e-5)
    inception(rng.integers(0, 256, (1, 20, 33, 3), dtype=np.uint8))  # another size, same trace
    assert inception._run.experimental_get_tracing_count() == 1

    a = rng.uniform(-1, 1, (64, 16, 16, 3)).astype(np.float32)
    b = rng.uniform(-1, 1, (64, 16, 16, 3)).astype(np.float32)
    d = vgg.lpips(a, b).numpy()
    assert d.shape == (64,)
    np.testing.assert_allclose(vgg.lpips(a[5:6], b[5:6]).numpy(), d[5:6], rtol=1e-5)


def test_grayscale_is_tiled_and_dtypes_checked(inception):
    gray = np.random.default_rng(6).integers(0, 256, (1, 24, 24, 1), dtype=np.uint8)
    np.testing.assert_array_equal(inception(gray)["pool3"].numpy(),
                                  inception(np.repeat(gray, 3, axis=-1))["pool3"].numpy())
    with pytest.raises(TypeError, match="uint8"):
        inception(gray.astype(np.float32))


def _nvidia_inception_names():
    """torchvision unit name -> unit name in NVIDIA's inception-2015-12-05.pt, written from the
    module tree a public port of that file declares (layers.conv..conv_4, layers.mixed..mixed_10,
    towers per block type), in torchvision's unit order."""
    towers = {
        "A": ["conv", "tower.conv", "tower.conv_1", "tower_1.conv", "tower_1.conv_1", "tower_1.conv_2",
              "tower_2.conv"],
        "B": ["conv", "tower.conv", "tower.conv_1", "tower.conv_2"],
        "C": ["conv", "tower.conv", "tower.conv_1", "tower.conv_2"]
             + [f"tower_1.conv{s}" for s in ("", "_1", "_2", "_3", "_4")] + ["tower_2.conv"],
        "D": ["tower.conv", "tower.conv_1", "tower_1.conv", "tower_1.conv_1", "tower_1.conv_2", "tower_1.conv_3"],
        "E": ["conv", "tower_conv", "tower_mixed_conv", "tower_mixed_conv_1", "tower_1_conv", "tower_1_conv_1",
              "tower_1_mixed_conv", "tower_1_mixed_conv_1", "tower_2_conv"],
    }
    kinds = "AAABCCCCDEE"
    units = [u[0] for u in random_weights.inception_units()]
    names = dict(zip(units[:5], ["layers.conv"] + [f"layers.conv_{i}" for i in range(1, 5)]))
    blocks = sorted({u.split(".")[0] for u in units[5:]})
    for b, (block, kind) in enumerate(zip(blocks, kinds)):
        mine = [u for u in units if u.startswith(block + ".")]
        assert len(mine) == len(towers[kind])
        prefix = "layers.mixed" + (f"_{b}" if b else "")
        names.update({u: f"{prefix}.{t}" for u, t in zip(mine, towers[kind])})
    return names


def assert_same_weights(a, b):
    """Every weight equal, in creation order (Keras paths repeat: conv/kernel, ...)."""
    assert len(a.weights) == len(b.weights)
    for x, y in zip(a.weights, b.weights):
        assert x.name == y.name and x.shape == y.shape
        np.testing.assert_array_equal(y.numpy(), x.numpy(), err_msg=x.path)


def test_nvidia_inception_names_load_the_same_network(inception):
    state = random_weights.inception_state()
    names = _nvidia_inception_names()
    theirs = {"output.weight": state["fc.weight"], "output.bias": state["fc.bias"]}
    for key, value in state.items():
        if key.startswith("fc."):
            continue
        unit, layer, param = key.rsplit(".", 2)  # e.g. Mixed_5b.branch1x1, bn, running_var
        if unit in names:
            theirs[f"{names[unit]}.{layer}.{param}"] = value
    nv = detectors.build_inception(theirs, {"file": "inception-2015-12-05.pt"})
    assert_same_weights(inception.model, nv.model)
    # NVIDIA's BN has no scale tensor: ones.
    del theirs["layers.mixed_10.tower_2_conv.bn.weight"]
    nv = detectors.build_inception(theirs, {"file": "inception-2015-12-05.pt"})
    np.testing.assert_array_equal(nv.model.Mixed_7c.branch_pool.bn.gamma.numpy(), 1.0)


def test_nvidia_vgg16_names_load_the_same_network(vgg, vgg_state):
    theirs = {}
    for k, (index, _) in enumerate(random_weights.VGG16_CONVS):
        for p in ("weight", "bias"):
            theirs[f"layers.conv{k + 1}.{p}"] = vgg_state[f"features.{index}.{p}"]
    for fc, index in (("fc1", 0), ("fc2", 3), ("fc3", 6)):
        for p in ("weight", "bias"):
            theirs[f"layers.{fc}.{p}"] = vgg_state[f"classifier.{index}.{p}"]
    lins = random_weights.lpips_state()
    for k in range(5):
        theirs[f"lpips{k}"] = lins[f"lin{k}.model.1.weight"][0]  # [C, 1, 1], as a public port reads them
    nv = detectors.build_vgg16(theirs, {"file": "vgg16.pt"})
    assert_same_weights(vgg.model, nv.model)
    assert_same_weights(vgg.head, nv.head)


def test_lpips_needs_weights(vgg):
    bare = detectors.VGG16Detector(vgg.model, {"file": "vgg16-397923af.pth"})
    x = np.zeros((1, 16, 16, 3), np.float32)
    with pytest.raises(UserError, match="no LPIPS weights.*lpips_path"):
        bare.lpips(x, x)
    with pytest.raises(ValueError, match="differ in shape"):
        vgg.lpips(x, x[:, :8])
    with pytest.raises(ValueError, match="at least 16x16"):
        vgg.lpips(x[:, :8], x[:, :8])


def test_replicas_compute_what_one_call_does():
    """Inside strategy.run on two logical CPUs (half the batch each; Inception built outside and
    inside strategy.scope()), the gathered outputs equal one call on the whole batch."""
    r = subprocess.run([sys.executable, os.path.join(HERE, "detectors_replicas_check.py")], capture_output=True,
                       text=True, timeout=900, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert r.returncode == 0, r.stderr[-3000:]
    result = json.loads(r.stdout.strip().splitlines()[-1])
    assert result["replicas"] == 2
    assert len(result["diff"]) == 6 and max(result["diff"].values()) < 1e-5, result["diff"]
