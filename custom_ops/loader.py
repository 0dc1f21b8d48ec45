"""Finds the compiled kernels once and decides, per call, between them and the TF reference.

Selection, strongest first: the ``impl`` argument of an op; an ``implementation(...)`` scope; the
environment variable ``TF_STYLEGAN2_OPS`` = ``auto`` (default) | ``ref`` | ``custom``.

``auto`` uses the compiled kernels when a library for this TensorFlow version is found, no GPU is
visible (the kernels are CPU kernels: on a GPU machine the reference ops run on the GPU instead of
bouncing tensors to the host) and the op is not being traced for XLA (XLA cannot compile custom
ops). Otherwise, and whenever loading fails, the reference ops run: results are the same within
float rounding, only speed differs. ``custom`` insists and raises if the library is unusable.

Library search order: ``$TF_STYLEGAN2_OPS_LIB``, ``custom_ops/_stylegan2_ops.so`` (from
``python -m custom_ops.build``), ``bazel-bin/custom_ops/_stylegan2_ops.so`` (from Bazel).
"""

from __future__ import annotations

import contextlib
import os
import threading
import warnings
from typing import Iterator, List, Optional

import tensorflow as tf

IMPLS = ("auto", "ref", "custom")
_HERE = os.path.dirname(os.path.abspath(__file__))
_REPO = os.path.dirname(_HERE)

_lock = threading.Lock()
_library = None
_library_path: Optional[str] = None
_load_error: Optional[str] = None
_searched = False
_scope = threading.local()

# AutoGraph would convert these when first called inside a tf.function, and its converted copies
# do not assign this module's globals: the loaded library would be forgotten.
_plain_python = tf.autograph.experimental.do_not_convert


def candidate_paths() -> List[str]:
    paths = [os.environ.get("TF_STYLEGAN2_OPS_LIB", "")]
    paths += [os.path.join(_HERE, "_stylegan2_ops.so"), os.path.join(_REPO, "bazel-bin", "custom_ops", "_stylegan2_ops.so")]
    return [p for p in paths if p]


@_plain_python
def load(path: str):
    """Loads the library at ``path`` and checks its TensorFlow version; raises on failure.

    One library per process: TensorFlow registers op names globally, and a second library with
    the same ops would load as an empty module.
    """
    global _library, _library_path, _load_error, _searched
    if _library is not None:
        if os.path.realpath(path) == _library_path:
            return _library
        raise RuntimeError(f"compiled ops are already loaded from {_library_path}; cannot also load {path}")
    lib = tf.load_op_library(path)
    with tf.init_scope():  # the first search may happen while a tf.function is being traced
        built_for = lib.style_gan2_ops_info().numpy().decode()
    if built_for != tf.__version__:
        raise RuntimeError(f"{path} was built for TensorFlow {built_for}, this is {tf.__version__}; "
                           "rebuild with `python -m custom_ops.build`")
    with _lock:
        _library, _library_path, _load_error, _searched = lib, os.path.realpath(path), None, True
    return lib


@_plain_python
def library():
    """The loaded library, or None (the reason is in ``load_error()``). Searches once."""
    global _load_error, _searched
    if _searched:
        return _library
    errors = []
    for path in candidate_paths():
        if not os.path.exists(path):
            continue
        try:
            return load(path)
        except Exception as e:  # a stale or foreign .so must not break the reference path
            errors.append(f"{path}: {e}")
    with _lock:
        _searched = True
        _load_error = "; ".join(errors) or "no compiled library found (python -m custom_ops.build)"
    if errors:
        warnings.warn(f"tf-stylegan2 compiled ops unusable, using reference ops: {_load_error}")
    return None


def load_error() -> Optional[str]:
    return _load_error


@contextlib.contextmanager
def implementation(impl: str) -> Iterator[None]:
    """Within this scope (per thread) ops without an explicit ``impl`` use ``impl``.

    Exports use ``implementation('ref')``: a SavedModel or TFLite file must contain only stock
    TensorFlow ops, or TF Serving and the TFLite runtime could not run it.
    """
    if impl not in IMPLS:
        raise ValueError(f"unknown ops implementation {impl!r}; expected one of {list(IMPLS)}")
    previous = getattr(_scope, "impl", None)
    _scope.impl = impl
    try:
        yield
    finally:
        _scope.impl = previous


def _in_xla_context() -> bool:
    try:
        from tensorflow.python.ops import control_flow_util

        return bool(control_flow_util.GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph()))
    except (ImportError, AttributeError):  # private API; without it, assume XLA is possible
        return True


@_plain_python
def use_custom(impl: Optional[str] = None) -> bool:
    """Whether an op called now should run the compiled kernel."""
    impl = impl or getattr(_scope, "impl", None) or os.environ.get("TF_STYLEGAN2_OPS", "auto")
    if impl not in IMPLS:
        raise ValueError(f"unknown ops implementation {impl!r}; expected one of {list(IMPLS)}")
    if impl == "ref":
        return False
    lib = library()
    if impl == "custom":
        if lib is None:
            raise RuntimeError(f"compiled ops requested but unavailable: {_load_error}")
        return True
    return lib is not None and not tf.config.list_physical_devices("GPU") and not _in_xla_context()
