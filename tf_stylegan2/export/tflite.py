"""TFLite export of a generator for on-device preview, and a LiteRT runner to check it.

Two models per generator, each with a fixed batch of one (what a phone runs):

* ``generator``: ``z [1, z_dim]``, ``c [1, c_dim]`` (conditional models only),
  ``truncation_psi []`` -> ``images [1, R, R, C]`` float32 in about [-1, 1];
* ``synthesis``: ``ws [1, num_ws, w_dim]`` -> ``images``, for apps that edit or mix ws themselves.

Each in three weight formats: ``fp32``; ``fp16`` (float16 weights, float32 compute on CPU; GPU
delegates can compute in float16); ``int8`` (dynamic-range quantization: int8 weights, activations
quantized on the fly by the kernels that support it). Only TFLite builtin operators are allowed, so
the stock runtime runs every file (no Flex/Select TF ops, no custom ops); :func:`check_builtin_only`
enforces that on every conversion.

Noise: the models bake in 'const' noise, the noise buffers stored with the generator. TFLite has no
stateless random normal builtin, and a preview should be repeatable: a seed shows the same image
as ``runners.generate --noise_mode=const`` and the SavedModel's ``noise_mode='const'``.

The models are converted from a SavedModel written by ``keras.export.ExportArchive``, which
records the Keras variables so that the converter freezes them into constants. A SavedModel of a
plain ``tf.Module`` holding Keras 3 layers keeps them as resource variables instead, and so does
``from_concrete_functions``: the model then has VAR_HANDLE/READ_VARIABLE operators and no weights.
:func:`check_builtin_only` rejects that too.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tempfile
import time
from typing import Dict, List, Optional, Sequence

import keras
import numpy as np
import tensorflow as tf

from custom_ops.loader import implementation
from tf_stylegan2.export.savedmodel import add_endpoint, input_specs
from tf_stylegan2.fileio import UserError, as_os_error, atomic_path
from tf_stylegan2.images import to_uint8
from tf_stylegan2.networks import Generator, float32_generator
from tf_stylegan2.sampling import labels, z_from_seeds

MODELS = ("generator", "synthesis")
QUANTIZATIONS = ("fp32", "fp16", "int8")
NOISE_MODE = "const"
# Builtins that hold state: present only when the converter failed to freeze the weights.
RESOURCE_OPS = frozenset({"VAR_HANDLE", "READ_VARIABLE", "ASSIGN_VARIABLE", "CALL_ONCE"})


def file_name(model: str, quantization: str) -> str:
    return f"{model}_{quantization}.tflite"


def edge_archive(G: Generator) -> keras.export.ExportArchive:
    """An ExportArchive of ``G`` (float32) with the batch-1 ``generator`` and ``synthesis`` endpoints."""
    G = float32_generator(G)
    specs = input_specs(G, batch_size=1)
    archive = keras.export.ExportArchive()
    add_endpoint(
        archive, "generator", ["z", "c", "truncation_psi"], specs,
        lambda z, truncation_psi, c=None: {"images": G(z, c, truncation_psi=truncation_psi, noise_mode=NOISE_MODE)},
    )
    add_endpoint(
        archive, "synthesis", ["ws"], specs, lambda ws: {"images": G.synthesis(ws, noise_mode=NOISE_MODE)}
    )
    return archive


def convert(saved_model_dir: str, model: str, quantization: str) -> bytes:
    """Converts signature ``model`` of a SavedModel to a builtin-only TFLite flatbuffer."""
    if quantization not in QUANTIZATIONS:
        raise UserError(f"unknown quantization {quantization!r}; expected one of {list(QUANTIZATIONS)}")
    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir, signature_keys=[model])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantization != "fp32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]  # alone: dynamic-range int8 weights
    if quantization == "fp16":
        converter.target_spec.supported_types = [tf.float16]
    flatbuffer = converter.convert()
    check_builtin_only(flatbuffer, f"{model} ({quantization})")
    return flatbuffer


def operator_names(flatbuffer: bytes) -> List[str]:
    """Sorted names of the operators a TFLite model uses, from its flatbuffer's operator codes.

    Builtins by their schema name (e.g. 'CONV_2D'); custom operators, Flex (Select TF) ones
    included, as 'CUSTOM:<name>' (e.g. 'CUSTOM:FlexPad').
    """
    from ai_edge_litert import schema_py_generated as schema

    builtin = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    model = schema.Model.GetRootAs(flatbuffer, 0)
    names = set()
    for i in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(i)
        # Codes below 127 may sit in the deprecated int8 field only; the larger of the two is right.
        op = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        if op == schema.BuiltinOperator.CUSTOM:
            names.add(f"CUSTOM:{(code.CustomCode() or b'').decode()}")
        else:
            names.add(builtin.get(op, f"UNKNOWN:{op}"))
    return sorted(names)


def check_builtin_only(flatbuffer: bytes, what: str = "model") -> List[str]:
    """Raises unless the model uses builtin operators only and holds its weights as constants."""
    names = operator_names(flatbuffer)
    foreign = [n for n in names if n.startswith(("CUSTOM:", "UNKNOWN:")) or n == "DELEGATE"]
    if foreign:
        raise RuntimeError(f"TFLite {what} needs non-builtin operators {foreign}; the stock runtime cannot run it")
    stateful = sorted(RESOURCE_OPS.intersection(names))
    if stateful:
        raise RuntimeError(f"TFLite {what} reads its weights from variables ({stateful}): the conversion lost them")
    return names


def export_tflite(
    G: Generator,
    outdir: str,
    models: Sequence[str] = MODELS,
    quantizations: Sequence[str] = QUANTIZATIONS,
    overwrite: bool = False,
) -> Dict[str, str]:
    """Writes ``<outdir>/<model>_<quantization>.tflite`` for every pair; returns {file name: path}.

    Existing files are replaced only with ``overwrite=True`` (checked before any work); each file is
    written atomically.
    """
    bad = [m for m in models if m not in MODELS] + [q for q in quantizations if q not in QUANTIZATIONS]
    if bad or not models or not quantizations:
        raise UserError(
            f"bad model or quantization {bad or '(none given)'}; "
            f"models: {list(MODELS)}, quantizations: {list(QUANTIZATIONS)}"
        )
    if os.path.exists(outdir) and not os.path.isdir(outdir):
        raise UserError(f"output directory {outdir} is a file, not a directory")
    targets = {file_name(m, q): os.path.join(outdir, file_name(m, q)) for m in models for q in quantizations}
    taken = [p for p in targets.values() if os.path.exists(p)]
    if taken and not overwrite:
        raise UserError(f"{taken[0]} already exists (use --overwrite to replace it)")
    with tempfile.TemporaryDirectory(prefix="tflite-export-") as tmp:
        saved_model = os.path.join(tmp, "saved_model")
        with implementation("ref"):  # builtin TFLite ops only, never the compiled kernels
            try:
                edge_archive(G).write_out(saved_model, verbose=False)
            except tf.errors.OpError as e:  # e.g. a full temporary directory
                raise as_os_error(e, saved_model) from None
        for m in models:
            for q in quantizations:
                flatbuffer = convert(saved_model, m, q)
                with atomic_path(targets[file_name(m, q)]) as path:
                    with open(path, "wb") as f:
                        f.write(flatbuffer)
    return targets


class TFLiteModel:
    """A generator or synthesis .tflite run by the LiteRT interpreter, one image per call."""

    def __init__(self, path: str, num_threads: Optional[int] = None):
        from ai_edge_litert.interpreter import Interpreter

        if not os.path.isfile(path):
            raise UserError(f"no such file: {path}")
        self.path = path
        self.size_bytes = os.path.getsize(path)
        try:
            self.interpreter = Interpreter(model_path=path, num_threads=num_threads)
        except (ValueError, RuntimeError) as e:
            raise UserError(f"cannot load {path} as a TFLite model: {str(e).splitlines()[0]}") from e
        signatures = self.interpreter.get_signature_list()
        kinds = [k for k in MODELS if k in signatures]
        if len(kinds) != 1:
            raise UserError(f"{path} is not a tf-stylegan2 export: signatures {sorted(signatures)}")
        self.kind = kinds[0]
        self.runner = self.interpreter.get_signature_runner(self.kind)
        self.input_shapes = {n: tuple(int(s) for s in d["shape"]) for n, d in self.runner.get_input_details().items()}
        _, self.resolution, _, self.img_channels = self.runner.get_output_details()["images"]["shape"]
        self.c_dim = self.input_shapes["c"][1] if "c" in self.input_shapes else 0

    def __call__(self, **inputs: np.ndarray) -> np.ndarray:
        feed = {n: np.asarray(inputs[n], np.float32).reshape(self.input_shapes[n]) for n in self.input_shapes}
        return self.runner(**feed)["images"]


def psnr(images: np.ndarray, reference: np.ndarray, drange=(-1.0, 1.0)) -> float:
    """Peak signal-to-noise ratio in dB of the displayed images: both clipped to ``drange`` (what
    ``to_uint8`` shows), peak = the range's width. Errors where both saturate are invisible and
    not counted; a randomly initialised generator saturates about half of its pixels."""
    lo, hi = drange
    a, b = (np.clip(np.asarray(x, np.float64), lo, hi) for x in (images, reference))
    mse = float(np.mean((a - b) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10((hi - lo) ** 2 / mse)


@dataclasses.dataclass
class Preview:
    """What :func:`preview` measured. Latencies are seconds per image (one interpreter call each)."""

    images: np.ndarray  # [N, R, R, C] uint8
    latencies: List[float]
    size_bytes: int
    max_abs_diff: Optional[float] = None  # against the Keras generator, when one was given
    psnr: Optional[float] = None


def _shapes(shapes: Dict[str, tuple]) -> str:
    return ", ".join(f"{n} {list(shape)}" for n, shape in sorted(shapes.items()))


def preview(
    model: TFLiteModel,
    seeds: Sequence[int],
    truncation_psi: float = 1.0,
    class_idx: Optional[int] = None,
    G: Optional[Generator] = None,
) -> Preview:
    """Runs ``model`` for each seed, timing every call after one warm-up.

    A synthesis model takes ws, so it needs ``G`` for the mapping. With ``G`` the images are also
    compared with the Keras generator's (float32, const noise, same seeds, psi and label).
    """
    if model.kind == "synthesis" and G is None:
        raise UserError(f"{model.path} is a synthesis model: give the generator (--network) for the mapping")
    if not math.isfinite(truncation_psi):  # the model cannot check it: TFLite has no assertion builtin
        raise UserError(f"truncation psi must be a finite number, got {truncation_psi}")
    if G is not None:
        G = float32_generator(G)
        specs = input_specs(G, batch_size=1)
        generator_shapes = {n: tuple(specs[n].shape) for n in model.input_shapes if n in specs}
        if ((G.img_resolution, G.img_channels) != (model.resolution, model.img_channels)
                or generator_shapes != model.input_shapes):
            raise UserError(
                f"{model.path} makes {model.resolution}x{model.resolution}x{model.img_channels} images from inputs "
                f"{_shapes(model.input_shapes)}, but the generator makes {G.img_resolution}x{G.img_resolution}x"
                f"{G.img_channels} from {_shapes(generator_shapes)}: not the same network"
            )
    z_dim = G.z_dim if G is not None else model.input_shapes["z"][1]
    zs = z_from_seeds(seeds, z_dim)
    cs = labels(model.c_dim, class_idx, len(seeds))
    psi = np.float32(truncation_psi)
    inputs = []
    for i in range(len(seeds)):
        z, c = zs[i : i + 1], None if cs is None else cs[i : i + 1]
        if model.kind == "synthesis":
            ws = G.mapping(tf.constant(z), None if c is None else tf.constant(c), truncation_psi=truncation_psi)
            inputs.append({"ws": ws.numpy()})
        else:
            inputs.append({"z": z, "truncation_psi": psi, **({} if c is None else {"c": c})})
    model(**inputs[0])  # warm-up: the first call allocates and packs weights
    outputs, latencies = [], []
    for feed in inputs:
        start = time.perf_counter()
        outputs.append(model(**feed))
        latencies.append(time.perf_counter() - start)
    images = np.concatenate(outputs)
    result = Preview(to_uint8(images), latencies, model.size_bytes)
    if G is not None:
        c = None if cs is None else tf.constant(cs)
        reference = G(tf.constant(zs), c, truncation_psi=truncation_psi, noise_mode=NOISE_MODE).numpy()
        result.max_abs_diff = float(np.abs(images - reference).max())
        result.psnr = psnr(images, reference)
    return result
