"""SavedModel export of a generator for TF Serving: ``generate``, ``mapping`` and ``synthesis`` signatures.

Layout: TF Serving watches ``<model_base>/`` and serves the highest numeric subdirectory, so a
version is written as ``<model_base>/<version>/`` (a complete SavedModel), atomically: it is built
under a hidden name that TF Serving ignores and renamed into place when whole.

Signatures (``N`` is dynamic; ``serving_default`` is ``generate``):

* ``generate``: ``z [N, z_dim] float32``, ``c [N, c_dim] float32`` (conditional models only),
  ``truncation_psi [] float32``, ``noise_mode [] string``, ``noise_seed [2] int64`` ->
  ``images [N, R, R, C] uint8``.
* ``mapping``: ``z``, (``c``), ``truncation_psi`` -> ``ws [N, num_ws, w_dim] float32``.
* ``synthesis``: ``ws``, ``noise_mode``, ``noise_seed`` -> ``images [N, R, R, C] uint8``.

``noise_mode`` is 'const' (the noise buffers stored with the model: the same picture every time),
'random' (noise drawn from ``noise_seed``, so a request is reproducible; send another seed for
other noise) or 'none'. Our layers take it as a Python string, so each signature holds the three
traced variants and ``tf.switch_case`` runs the one named in the request; an unknown name fails
the request with InvalidArgument, and so does a NaN or Inf in any float input. All inputs are required: TF Serving rejects a request that does
not feed every input of a signature.

The graph computes in float32 whatever the generator trained with, and uses the per-sample
modulated convolution (``fused_modconv=False``), which needs no static batch size.
"""

from __future__ import annotations

import os
import re
from typing import Callable, Dict, List, Optional

import keras
import tensorflow as tf

from custom_ops.loader import implementation
from layers.noise import NOISE_MODES
from tf_stylegan2.fileio import UserError, as_os_error, atomic_path
from tf_stylegan2.networks import Generator, float32_generator

SIGNATURES = ("generate", "mapping", "synthesis")


def to_uint8(images: tf.Tensor) -> tf.Tensor:
    """TF twin of ``tf_stylegan2.images.to_uint8`` for [-1, 1] images: round half to even, clip, uint8."""
    return tf.cast(tf.clip_by_value(tf.round((images + 1.0) * 127.5), 0.0, 255.0), tf.uint8)


def noise_mode_index(noise_mode: tf.Tensor) -> tf.Tensor:
    """Position of a scalar string ``noise_mode`` in ``NOISE_MODES``; an unknown name fails the call."""
    matches = tf.equal(noise_mode, tf.constant(NOISE_MODES))
    check = tf.debugging.Assert(
        tf.reduce_any(matches), [f"noise_mode must be one of {list(NOISE_MODES)}, got", noise_mode]
    )
    with tf.control_dependencies([check]):
        return tf.argmax(tf.cast(matches, tf.int32), output_type=tf.int32)


def synthesize(G: Generator, ws: tf.Tensor, noise_mode: tf.Tensor, noise_seed: tf.Tensor) -> tf.Tensor:
    """``G.synthesis`` with the noise mode chosen at run time (one traced branch per mode)."""
    branches = [
        (lambda mode=mode: G.synthesis(ws, noise_mode=mode, noise_seed=noise_seed)) for mode in NOISE_MODES
    ]
    return tf.switch_case(noise_mode_index(noise_mode), branches)


def input_specs(G: Generator, batch_size: Optional[int] = None) -> Dict[str, tf.TensorSpec]:
    """Every signature input by name; ``c`` only for a conditional generator."""
    specs = {
        "z": tf.TensorSpec([batch_size, G.z_dim], tf.float32, name="z"),
        "c": tf.TensorSpec([batch_size, G.c_dim], tf.float32, name="c"),
        "truncation_psi": tf.TensorSpec([], tf.float32, name="truncation_psi"),
        "noise_mode": tf.TensorSpec([], tf.string, name="noise_mode"),
        "noise_seed": tf.TensorSpec([2], tf.int64, name="noise_seed"),
        "ws": tf.TensorSpec([batch_size, G.num_ws, G.w_dim], tf.float32, name="ws"),
    }
    if not G.c_dim:
        del specs["c"]
    return specs


def add_endpoint(
    archive: keras.export.ExportArchive,
    name: str,
    inputs: List[str],
    specs: Dict[str, tf.TensorSpec],
    fn: Callable[..., Dict[str, tf.Tensor]],
) -> None:
    """Adds ``fn(**named inputs)`` as endpoint ``name``; inputs absent from ``specs`` (``c``) are dropped."""
    names = [n for n in inputs if n in specs]

    def endpoint(*args):
        return fn(**dict(zip(names, args)))

    endpoint.__name__ = name  # names the traced function in graphs and error messages
    archive.add_endpoint(name, endpoint, input_signature=[specs[n] for n in names])


def serving_archive(G: Generator) -> keras.export.ExportArchive:
    """An ExportArchive of ``G`` (float32) with the three serving signatures, generate first."""
    G = float32_generator(G)
    if G.mapping.w_avg is None:
        raise UserError("this generator does not track w_avg (w_avg_beta=None), so it cannot apply truncation_psi")
    specs = input_specs(G)

    def mapping(z, truncation_psi, c=None):
        return G.mapping(z, c, truncation_psi=truncation_psi)

    archive = keras.export.ExportArchive()
    # No archive.track(G): it would save every weight twice (the Keras variables beside the tf.Variables
    # that the endpoints capture, which the archive records by itself).
    add_endpoint(
        archive, "generate", ["z", "c", "truncation_psi", "noise_mode", "noise_seed"], specs,
        finite_inputs(lambda noise_mode, noise_seed, **kw: {
            "images": to_uint8(synthesize(G, mapping(**kw), noise_mode, noise_seed))}),
    )
    add_endpoint(archive, "mapping", ["z", "c", "truncation_psi"], specs,
                 finite_inputs(lambda **kw: {"ws": mapping(**kw)}))
    add_endpoint(
        archive, "synthesis", ["ws", "noise_mode", "noise_seed"], specs,
        finite_inputs(lambda ws, noise_mode, noise_seed: {"images": to_uint8(synthesize(G, ws, noise_mode, noise_seed))}),
    )
    return archive


def finite_inputs(fn: Callable[..., Dict[str, tf.Tensor]]) -> Callable[..., Dict[str, tf.Tensor]]:
    """``fn`` with every float input checked first: a NaN or Inf in ``z``, ``c``, ``ws`` or
    ``truncation_psi`` fails the request with InvalidArgument (it would make black images)."""

    def checked(**inputs):
        return fn(**{name: tf.debugging.assert_all_finite(x, f"{name} must be finite") if x.dtype.is_floating else x
                     for name, x in inputs.items()})

    return checked


def versions(model_base: str) -> List[int]:
    """The version numbers present under ``model_base`` (numeric subdirectories, as TF Serving reads them)."""
    if not os.path.isdir(model_base):
        return []
    return sorted(
        int(d) for d in os.listdir(model_base) if re.fullmatch(r"\d+", d) and os.path.isdir(os.path.join(model_base, d))
    )


def export_savedmodel(
    G: Generator, model_base: str, version: Optional[int] = None, overwrite: bool = False
) -> str:
    """Writes ``G`` as ``<model_base>/<version>/`` (default version: one past the highest present).

    An existing version is replaced only with ``overwrite=True``; the check comes before any work
    and the write is atomic, so a failed export leaves ``model_base`` as it was. Returns the path.
    """
    if os.path.exists(model_base) and not os.path.isdir(model_base):
        raise UserError(f"model base {model_base} is a file, not a directory")
    if version is None:
        version = (versions(model_base) or [0])[-1] + 1
    if version < 1:
        raise UserError(f"version must be a positive integer, got {version}")
    path = os.path.join(model_base, str(version))
    if os.path.exists(path) and not overwrite:
        raise UserError(f"{path} already exists: version {version} is taken (use --overwrite to replace it)")
    # Stock ops only: TF Serving cannot run the compiled kernels of custom_ops.
    with implementation("ref"):
        archive = serving_archive(G)
        with atomic_path(path, overwrite=overwrite) as tmp:
            try:
                archive.write_out(tmp, verbose=False)
            except tf.errors.OpError as e:  # TF's writer reports a full disk as an OpError
                raise as_os_error(e, tmp) from None
    return path
