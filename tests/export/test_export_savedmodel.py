"""SavedModel export: signatures as saved_model_cli lists them, parity with Keras after a reload in
a fresh process, dynamic batch, noise modes, labels, versions and atomic replacement."""

import os
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from export_helpers import assert_quantizes, keras_images, tiny_generator

from tf_stylegan2 import Generator, MappingConfig
from tf_stylegan2.export.savedmodel import export_savedmodel, to_uint8, versions
from tf_stylegan2.networks import float32_generator
from tf_stylegan2.fileio import UserError
from tf_stylegan2.images import to_uint8 as numpy_to_uint8

ATOL = 1e-5

# Runs every signature call listed in an .npz ("<signature>.<case>.<input>" -> array) in a fresh
# interpreter and saves the outputs as "<signature>.<case>.<output>".
FRESH_PROCESS = """
import sys
import numpy as np
import tensorflow as tf
model_dir, inputs, outputs = sys.argv[1:]
model = tf.saved_model.load(model_dir)
calls = {}
for key, value in np.load(inputs).items():
    signature, case, name = key.split(".")
    calls.setdefault((signature, case), {})[name] = tf.constant(value)
results = {}
for (signature, case), feed in calls.items():
    for name, value in model.signatures[signature](**feed).items():
        results[f"{signature}.{case}.{name}"] = value.numpy()
np.savez(outputs, **results)
"""


def signature_table(text):
    """{signature: {"inputs"|"outputs": {name: (dtype, shape)}}} from ``saved_model_cli show --all``."""
    table = {}
    for block in text.split("signature_def['")[1:]:
        name = block.split("'", 1)[0]
        entries = re.findall(r"(inputs|outputs)\['(\w+)'\] tensor_info:\s+dtype: (\w+)\s+shape: ([^\n]+)", block)
        table[name] = {"inputs": {}, "outputs": {}}
        for kind, tensor, dtype, shape in entries:
            table[name][kind][tensor] = (dtype, shape)
    return table


def test_saved_model_cli_lists_the_signatures(served):
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    r = subprocess.run([cli, "show", "--dir", os.path.join(served, "1"), "--all"], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    table = signature_table(r.stdout)
    z, psi = ("DT_FLOAT", "(-1, 8)"), ("DT_FLOAT", "()")
    noise = {"noise_mode": ("DT_STRING", "()"), "noise_seed": ("DT_INT64", "(2)")}
    images = {"images": ("DT_UINT8", "(-1, 16, 16, 3)")}
    ws = ("DT_FLOAT", "(-1, 6, 8)")  # num_ws = 6 at 16x16
    assert table["generate"] == {"inputs": {"z": z, "truncation_psi": psi, **noise}, "outputs": images}
    assert table["mapping"] == {"inputs": {"z": z, "truncation_psi": psi}, "outputs": {"ws": ws}}
    assert table["synthesis"] == {"inputs": {"ws": ws, **noise}, "outputs": images}
    assert table["serving_default"] == table["generate"]
    assert r.stdout.count("Method name is: tensorflow/serving/predict") == 4


def test_reloaded_in_a_fresh_process_matches_keras(served, tiny, tmp_path):
    G, _ = tiny
    rng = np.random.RandomState(7)
    z = rng.randn(3, 8).astype(np.float32)
    ws = rng.randn(2, G.num_ws, 8).astype(np.float32)
    seed = np.array([5, 6], np.int64)
    feed = {}
    for mode in ("const", "none", "random"):
        feed.update({f"generate.{mode}.z": z, f"generate.{mode}.truncation_psi": np.float32(0.7),
                     f"generate.{mode}.noise_mode": np.array(mode), f"generate.{mode}.noise_seed": seed})
    # Batch 1 through the same dynamic-batch signature, without truncation.
    feed.update({"generate.one.z": z[:1], "generate.one.truncation_psi": np.float32(1.0),
                 "generate.one.noise_mode": np.array("const"), "generate.one.noise_seed": seed})
    feed.update({"mapping.psi.z": z, "mapping.psi.truncation_psi": np.float32(0.7)})
    for mode in ("const", "random"):
        feed.update({f"synthesis.{mode}.ws": ws, f"synthesis.{mode}.noise_mode": np.array(mode),
                     f"synthesis.{mode}.noise_seed": seed})
    np.savez(tmp_path / "in.npz", **feed)
    r = subprocess.run([sys.executable, "-c", FRESH_PROCESS, os.path.join(served, "1"), str(tmp_path / "in.npz"),
                        str(tmp_path / "out.npz")], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    out = dict(np.load(tmp_path / "out.npz"))

    for mode in ("const", "none", "random"):
        assert_quantizes(out[f"generate.{mode}.images"], keras_images(G, z, psi=0.7, noise_mode=mode, seed=seed), ATOL)
    assert_quantizes(out["generate.one.images"], keras_images(G, z[:1]), ATOL)
    expected_ws = G.mapping(tf.constant(z), truncation_psi=0.7).numpy()
    np.testing.assert_allclose(out["mapping.psi.ws"], expected_ws, rtol=0, atol=ATOL)
    for mode in ("const", "random"):
        reference = G.synthesis(tf.constant(ws), noise_mode=mode, noise_seed=tf.constant(seed)).numpy()
        assert_quantizes(out[f"synthesis.{mode}.images"], reference, ATOL)
    # The inputs matter: noise modes and truncation give different pictures.
    assert not np.array_equal(out["generate.const.images"], out["generate.none.images"])
    assert not np.array_equal(out["generate.const.images"], out["generate.random.images"])


def test_noise_modes_seeds_and_bad_mode(served):
    model = tf.saved_model.load(os.path.join(served, "1"))
    generate = model.signatures["generate"]
    z = tf.constant(np.random.RandomState(3).randn(2, 8), tf.float32)

    def run(mode, seed):
        return generate(z=z, truncation_psi=tf.constant(1.0), noise_mode=tf.constant(mode),
                        noise_seed=tf.constant(seed, tf.int64))["images"].numpy()

    np.testing.assert_array_equal(run("random", [1, 2]), run("random", [1, 2]))  # reproducible
    assert not np.array_equal(run("random", [1, 2]), run("random", [1, 3]))
    np.testing.assert_array_equal(run("const", [1, 2]), run("const", [9, 9]))  # the seed is for 'random' only
    with pytest.raises(tf.errors.InvalidArgumentError, match="noise_mode must be one of"):
        run("gaussian", [1, 2])


def test_non_finite_request_inputs_fail_with_invalid_argument(served, tiny):
    """A NaN or Inf in any float input fails the request (it used to render black images)."""
    model = tf.saved_model.load(os.path.join(served, "1"))
    G = tiny[0]
    z = np.random.RandomState(3).randn(2, G.z_dim).astype(np.float32)
    ws = np.zeros([2, G.num_ws, G.w_dim], np.float32)
    noise = {"noise_mode": tf.constant("const"), "noise_seed": tf.constant([0, 0], tf.int64)}
    calls = {
        "truncation_psi": lambda bad: model.signatures["mapping"](z=tf.constant(z), truncation_psi=tf.constant(bad)),
        "z": lambda bad: model.signatures["generate"](z=tf.constant(np.where(np.arange(G.z_dim) == 3, bad, z), tf.float32),
                                                      truncation_psi=tf.constant(0.7), **noise),
        "ws": lambda bad: model.signatures["synthesis"](ws=tf.constant(ws + bad), **noise),
    }
    for name, call in calls.items():
        for bad in (np.nan, np.inf, -np.inf):
            with pytest.raises(tf.errors.InvalidArgumentError, match=f"{name} must be finite"):
                call(np.float32(bad))
    assert calls["truncation_psi"](np.float32(-0.5))["ws"].shape == (2, G.num_ws, G.w_dim)  # any finite psi


def test_conditional_generator_takes_labels(tmp_path):
    G = tiny_generator(res=8, c_dim=3, seed=4)
    path = export_savedmodel(G, str(tmp_path / "cond"))
    model = tf.saved_model.load(path)
    generate = model.signatures["generate"]
    assert sorted(generate.structured_input_signature[1]) == ["c", "noise_mode", "noise_seed", "truncation_psi", "z"]
    z = np.random.RandomState(0).randn(3, 8).astype(np.float32)
    c = np.eye(3, dtype=np.float32)
    images = generate(z=tf.constant(z), c=tf.constant(c), truncation_psi=tf.constant(0.5),
                      noise_mode=tf.constant("const"), noise_seed=tf.constant([0, 0], tf.int64))["images"].numpy()
    assert_quantizes(images, keras_images(G, z, c, psi=0.5), ATOL)
    ws = model.signatures["mapping"](z=tf.constant(z), c=tf.constant(c[::-1].copy()), truncation_psi=tf.constant(1.0))
    np.testing.assert_allclose(ws["ws"].numpy(), G.mapping(tf.constant(z), tf.constant(c[::-1].copy())).numpy(),
                               rtol=0, atol=ATOL)


def test_versions_overwrite_and_atomic_replacement(tmp_path):
    base = str(tmp_path / "model")
    G = tiny_generator(res=8, seed=2)
    assert export_savedmodel(G, base) == os.path.join(base, "1")
    assert export_savedmodel(G, base) == os.path.join(base, "2")
    assert versions(base) == [1, 2] and sorted(os.listdir(base)) == ["1", "2"]  # no temporaries left

    pb = os.path.join(base, "1", "saved_model.pb")
    before = open(pb, "rb").read()
    with pytest.raises(UserError, match="version 1 is taken"):
        export_savedmodel(G, base, version=1)
    assert open(pb, "rb").read() == before
    with pytest.raises(UserError, match="positive"):
        export_savedmodel(G, base, version=0)

    other = tiny_generator(res=8, seed=3)
    export_savedmodel(other, base, version=1, overwrite=True)
    assert sorted(os.listdir(base)) == ["1", "2"]
    z = np.random.RandomState(0).randn(2, 8).astype(np.float32)
    ws = tf.saved_model.load(os.path.join(base, "1")).signatures["mapping"](
        z=tf.constant(z), truncation_psi=tf.constant(1.0))["ws"]
    np.testing.assert_allclose(ws.numpy(), other.mapping(tf.constant(z)).numpy(), rtol=0, atol=ATOL)


def test_mixed_precision_generator_exports_in_float32():
    G = tiny_generator(res=8, seed=5)
    mixed = Generator(G.config, dtype="mixed_bfloat16")
    mixed.set_weights(G.get_weights())
    copy = float32_generator(mixed)
    assert copy.dtype_policy.name == "float32" and float32_generator(G) is G
    z = np.random.RandomState(1).randn(2, 8).astype(np.float32)
    np.testing.assert_allclose(keras_images(copy, z), keras_images(G, z), rtol=0, atol=1e-6)


def test_uint8_conversion_matches_the_image_writer():
    x = np.concatenate([np.linspace(-1.2, 1.2, 200001, dtype=np.float32),
                        (np.arange(256, dtype=np.float32) + 0.5) / np.float32(127.5) - 1])  # near the ties
    np.testing.assert_array_equal(to_uint8(tf.constant(x)).numpy(), numpy_to_uint8(x))


def test_every_weight_is_saved_once(served, tiny):
    G, _ = tiny
    saved = tf.train.list_variables(os.path.join(served, "1", "variables", "variables"))
    shapes = sorted(tuple(shape) for name, shape in saved if name != "_CHECKPOINTABLE_OBJECT_GRAPH")
    assert shapes == sorted(tuple(v.shape) for v in G.weights)


def test_generator_without_w_avg_is_refused(tmp_path):
    G = tiny_generator(res=4, mapping=MappingConfig(num_layers=1, w_avg_beta=None))
    with pytest.raises(UserError, match="does not track w_avg"):
        export_savedmodel(G, str(tmp_path / "m"))
    assert not (tmp_path / "m" / "1").exists()
