"""TFLite export: builtin operators only (parsed from the flatbuffer), weights present, parity of
fp32 / fp16 / int8 with the Keras generator, labels and other architectures, the preview runner."""

import os
import re

import numpy as np
import pytest
import tensorflow as tf
from export_helpers import assert_quantizes, keras_images, run_runner, tiny_generator
from PIL import Image

from tf_stylegan2.export.tflite import (
    MODELS,
    QUANTIZATIONS,
    TFLiteModel,
    check_builtin_only,
    export_tflite,
    file_name,
    operator_names,
    preview,
    psnr,
)
from tf_stylegan2.images import grid
from tf_stylegan2.sampling import z_from_seeds

SEEDS = [0, 1, 2, 3]
PSI = 0.7
# The acceptance bounds: fp32 is the same computation; fp16 and int8 weights cost some PSNR.
MAX_ABS_DIFF_FP32 = 1e-4
MIN_PSNR = {"fp16": 40.0, "int8": 30.0}


def test_every_model_uses_builtin_operators_only(tflite_dir):
    assert sorted(os.listdir(tflite_dir)) == sorted(file_name(m, q) for m in MODELS for q in QUANTIZATIONS)
    for name in os.listdir(tflite_dir):
        flatbuffer = open(os.path.join(tflite_dir, name), "rb").read()
        ops = check_builtin_only(flatbuffer, name)
        assert not any(op.startswith("CUSTOM") or op.startswith("Flex") for op in ops), (name, ops)
        assert {"CONV_2D", "TRANSPOSE_CONV", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"} <= set(ops), (name, ops)
        assert ("DEQUANTIZE" in ops) == name.endswith("_fp16.tflite"), (name, ops)  # fp16 weights, fp32 compute
        # The interpreter that runs the model sees the same operators.
        model = TFLiteModel(os.path.join(tflite_dir, name))
        assert {op["op_name"] for op in model.interpreter._get_ops_details()} == set(ops)


def test_weights_are_stored_once(tflite_dir, tiny):
    """Constant buffers hold each weight once, in the file's precision, plus small folded constants
    (the [in, out] sums of squared weights of the demodulation: 1/9 of a 3x3 weight)."""
    from ai_edge_litert import schema_py_generated as schema

    G, _ = tiny
    fp32_bytes = 4 * sum(int(np.prod(v.shape)) for v in G.weights)
    for name, bound in [("generator_fp32", 1.2), ("synthesis_fp32", 1.2), ("generator_fp16", 0.6)]:
        model = schema.Model.GetRootAs(open(os.path.join(tflite_dir, f"{name}.tflite"), "rb").read(), 0)
        stored = sum(model.Buffers(i).DataLength() for i in range(model.BuffersLength()))
        assert stored <= bound * fp32_bytes, (name, stored, fp32_bytes)


def test_guard_rejects_select_tf_ops_and_weightless_models(tmp_path):
    class SixD(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([1, 2, 1, 2, 1, 3])])
        def f(self, x):
            return tf.pad(x, [[0, 0], [0, 0], [0, 1], [0, 0], [0, 1], [0, 0]])

    module = SixD()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([module.f.get_concrete_function()], module)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.SELECT_TF_OPS]
    flex = converter.convert()
    assert "CUSTOM:FlexPad" in operator_names(flex)
    with pytest.raises(RuntimeError, match="non-builtin operators"):
        check_builtin_only(flex)

    # Keras 3 layers in a plain tf.Module: the converter keeps them as variables, without weights.
    class Plain(tf.Module):
        def __init__(self):
            self.G = tiny_generator(res=4)

        @tf.function(input_signature=[tf.TensorSpec([1, 8])])
        def f(self, z):
            return self.G.mapping(z)

    tf.saved_model.save(Plain(), str(tmp_path / "plain"))
    weightless = tf.lite.TFLiteConverter.from_saved_model(str(tmp_path / "plain")).convert()
    with pytest.raises(RuntimeError, match="conversion lost them"):
        check_builtin_only(weightless)


@pytest.mark.parametrize("quantization", QUANTIZATIONS)
@pytest.mark.parametrize("kind", MODELS)
def test_parity_with_keras(tflite_dir, tiny, kind, quantization):
    G, _ = tiny
    model = TFLiteModel(os.path.join(tflite_dir, file_name(kind, quantization)))
    assert model.kind == kind and model.resolution == 16 and model.c_dim == 0
    z = z_from_seeds(SEEDS, G.z_dim)
    ws = G.mapping(tf.constant(z), truncation_psi=PSI).numpy()
    reference = G.synthesis(tf.constant(ws), noise_mode="const").numpy()
    np.testing.assert_allclose(reference, keras_images(G, z, psi=PSI), rtol=0, atol=1e-6)
    feeds = [{"z": z[i : i + 1], "truncation_psi": np.float32(PSI)} if kind == "generator" else {"ws": ws[i : i + 1]}
             for i in range(len(SEEDS))]
    images = np.concatenate([model(**feed) for feed in feeds])
    max_abs_diff, snr = np.abs(images - reference).max(), psnr(images, reference)
    if quantization == "fp32":
        assert max_abs_diff <= MAX_ABS_DIFF_FP32
    else:
        assert snr >= MIN_PSNR[quantization], snr
        assert max_abs_diff > MAX_ABS_DIFF_FP32  # the weights really are stored in fewer bits

    # preview() reports the same figures for the same seeds.
    result = preview(model, SEEDS, PSI, G=G)
    assert result.max_abs_diff == pytest.approx(max_abs_diff, rel=1e-6, abs=1e-9)
    assert result.psnr == pytest.approx(snr, rel=1e-6)
    assert len(result.latencies) == len(SEEDS) and result.size_bytes == os.path.getsize(model.path)
    assert_quantizes(result.images, reference, max(max_abs_diff, 1e-6) * 1.001)


@pytest.mark.parametrize("c_dim,architecture", [(3, "skip"), (0, "resnet"), (0, "orig")])
def test_labels_and_other_architectures_convert(tmp_path, c_dim, architecture):
    G = tiny_generator(res=8, c_dim=c_dim, seed=6, architecture=architecture)
    paths = export_tflite(G, str(tmp_path), models=["generator"], quantizations=["fp32"])
    model = TFLiteModel(paths[file_name("generator", "fp32")])
    assert model.c_dim == c_dim
    check_builtin_only(open(model.path, "rb").read())
    result = preview(model, SEEDS, PSI, class_idx=1 if c_dim else None, G=G)
    assert result.max_abs_diff <= MAX_ABS_DIFF_FP32
    if c_dim:
        other = preview(model, SEEDS, PSI, class_idx=2, G=G)
        assert other.max_abs_diff <= MAX_ABS_DIFF_FP32 and not np.array_equal(other.images, result.images)


def test_preview_runner_writes_grid_and_reports(tflite_dir, tiny, tmp_path):
    G, path = tiny
    out = tmp_path / "preview.png"
    r = run_runner("preview_tflite", f"--model={os.path.join(tflite_dir, 'generator_fp32.tflite')}",
                   f"--network={path}", "--seeds=0-3", f"--trunc={PSI}", f"--out={out}")
    assert r.returncode == 0, r.stderr
    picture = np.asarray(Image.open(out))
    assert picture.shape == (32, 32, 3)  # 2 x 2 grid of 16 x 16
    reference = grid(keras_images(G, z_from_seeds(SEEDS, G.z_dim), psi=PSI))
    assert_quantizes(picture, reference, MAX_ABS_DIFF_FP32)
    size = os.path.getsize(os.path.join(tflite_dir, "generator_fp32.tflite")) / 2**20
    assert f"generator 16x16, {size:.2f} MiB" in r.stdout, r.stdout
    assert re.search(r"latency per image: mean \d+\.\d+ ms, median \d+\.\d+ ms", r.stdout), r.stdout
    diff = float(re.search(r"max abs diff (\S+),", r.stdout).group(1))
    assert 0 <= diff <= MAX_ABS_DIFF_FP32, r.stdout


def test_psnr_of_displayed_images():
    reference = np.zeros([2, 4, 4, 3], np.float32)
    assert psnr(reference + 0.02, reference) == pytest.approx(10 * np.log10(4 / 0.02**2))  # 40 dB
    assert psnr(reference + 0.02, reference + 0.02) == float("inf")
    saturated = np.full_like(reference, 2.0)
    assert psnr(saturated + 1.0, saturated) == float("inf")  # both show as white
