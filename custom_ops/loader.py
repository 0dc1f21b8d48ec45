"""Finds the compiled kernels once and decides, per call, between them and the TF reference ops.

Selection, strongest first: the ``impl`` argument of an op; an ``implementation(...)`` scope; the
environment variable ``TF_STYLEGAN2_OPS``:

- ``auto`` (default): where TensorFlow sees a GPU, the compiled kernels if the library has GPU
  kernels that run on it (otherwise one warning names the fix, ``python -m custom_ops.build
  --cuda``, and the reference ops run). On a CPU-only machine the compiled CPU kernels when a
  library is built (``CPU_AUTO``, as measured in docs/PERFORMANCE.md), else the reference ops.
  Always the reference ops while a function is traced for XLA, which cannot compile custom ops.
- ``ref``: the reference ops (stock TensorFlow, any device, XLA, TFLite).
- ``custom``: the compiled kernels on whatever device the op is placed; raises if they are
  unusable where ``auto`` would have warned.
- ``cuda``: like ``custom``, and insists on usable GPU kernels and a GPU (benchmarks).

Results are the same within float rounding whichever runs; only speed differs. A library is
refused (and the reference ops run) when it was built for another TensorFlow version, from other
kernel sources than those beside it, or cannot load. Search order: ``$TF_STYLEGAN2_OPS_LIB``,
``custom_ops/_stylegan2_ops.so`` (``python -m custom_ops.build``), ``bazel-bin/custom_ops/...``
(Bazel).
"""

from __future__ import annotations

import contextlib
import os
import threading
import warnings
from typing import Dict, Iterator, List, Optional

import tensorflow as tf

from custom_ops import build

IMPLS = ("auto", "ref", "custom", "cuda")

# Whether ``auto`` runs the compiled CPU kernels on a machine without a GPU: yes, they are faster
# than TensorFlow's own ops at stylegan2-ada's widths, generator and training (docs/PERFORMANCE.md).
CPU_AUTO = True

# Element types the kernels are built for (CPU and GPU).
KERNEL_DTYPES = (tf.float16, tf.bfloat16, tf.float32, tf.float64)

_HERE = os.path.dirname(os.path.abspath(__file__))
_REPO = os.path.dirname(_HERE)

_lock = threading.Lock()
_library = None
_library_path: Optional[str] = None
_info: Dict[str, str] = {}
_load_error: Optional[str] = None
_searched = False
_gpu_problem: Optional[str] = None
_gpu_checked = False
_warned = set()
_scope = threading.local()

# AutoGraph would convert these when first called inside a tf.function, and its converted copies
# do not assign this module's globals: the loaded library would be forgotten.
_plain_python = tf.autograph.experimental.do_not_convert


def candidate_paths() -> List[str]:
    paths = [os.environ.get("TF_STYLEGAN2_OPS_LIB", "")]
    paths += [os.path.join(_HERE, "_stylegan2_ops.so"), os.path.join(_REPO, "bazel-bin", "custom_ops", "_stylegan2_ops.so")]
    return [p for p in paths if p]


def parse_info(info: str) -> Dict[str, str]:
    """``StyleGAN2OpsInfo``'s ``key=value`` pairs (a library older than them gives only a version)."""
    return dict(item.split("=", 1) for item in info.split() if "=" in item)


_OTHER_SOURCES = "it was built from other kernel sources than custom_ops/kernels"


def stale_reason(info: Dict[str, str]) -> Optional[str]:
    """Why a library with build ``info`` must not be used here, or None."""
    if info.get("tensorflow") != tf.__version__:
        return f"it was built for TensorFlow {info.get('tensorflow', 'unknown')}, this is {tf.__version__}"
    if build.library_sources() and info.get("sources") != build.sources_digest():
        return _OTHER_SOURCES
    return None


def _rebuild_hint() -> str:
    return "python -m custom_ops.build --cuda" if gpu_visible() else "python -m custom_ops.build"


@_plain_python
def load(path: str):
    """Loads the library at ``path`` and checks what it was built for; raises on failure.

    One library per process: TensorFlow registers op names globally, and a second library with
    the same ops would load as an empty module.
    """
    global _library, _library_path, _info, _load_error, _searched, _gpu_checked
    if _library is not None:
        if os.path.realpath(path) == _library_path:
            return _library
        raise RuntimeError(f"compiled ops are already loaded from {_library_path}; cannot also load {path}")
    # A library from other sources is refused before it registers its ops: once registered, op
    # names are taken in this process and no other candidate could load.
    if build.library_sources():
        with open(path, "rb") as f:
            if build.sources_digest().encode() not in f.read():
                raise RuntimeError(f"{path} is stale: {_OTHER_SOURCES}; rebuild with `{_rebuild_hint()}`")
    lib = tf.load_op_library(path)
    with tf.init_scope():  # the first search may happen while a tf.function is being traced
        info = parse_info(lib.style_gan2_ops_info().numpy().decode())
    reason = stale_reason(info)
    if reason:
        raise RuntimeError(f"{path} is stale: {reason}; rebuild with `{_rebuild_hint()}`")
    with _lock:
        _library, _library_path, _info, _load_error, _searched = lib, os.path.realpath(path), info, None, True
        _gpu_checked = False
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
            errors.append(str(e) if "stale" in str(e) else f"{path}: {e}")
    with _lock:
        _searched = True
        _load_error = "; ".join(errors) or "no compiled library found"
    return None


def load_error() -> Optional[str]:
    return _load_error


def build_info() -> Dict[str, str]:
    """What the loaded library was built for (empty when none is loaded)."""
    return dict(_info)


def has_gpu_kernels() -> bool:
    return _info.get("cuda", "0") != "0"


def gpu_visible() -> bool:
    return bool(tf.config.list_physical_devices("GPU"))


@_plain_python
def gpu_problem() -> Optional[str]:
    """Why the compiled GPU kernels cannot run here (None: they can, or there is no GPU)."""
    global _gpu_problem, _gpu_checked
    if not gpu_visible():
        return None
    lib = library()
    if lib is None:
        return _load_error
    if _gpu_checked:
        return _gpu_problem
    if not has_gpu_kernels():
        problem = f"{_library_path} has no GPU kernels (build them with `python -m custom_ops.build --cuda`)"
    else:
        with tf.init_scope():
            problem = lib.style_gan2_cuda_check().numpy().decode() or None
        if problem:
            problem = f"{_library_path}: {problem} (rebuild with `python -m custom_ops.build --cuda`, README: Install)"
    with _lock:
        _gpu_problem, _gpu_checked = problem, True
    return problem


def warn_once(key: str, message: str) -> None:
    """One warning per key and process."""
    with _lock:
        if key in _warned:
            return
        _warned.add(key)
    warnings.warn(message, stacklevel=3)


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


def requested(impl: Optional[str] = None) -> str:
    """The implementation asked for: ``impl``, else the scope's, else ``$TF_STYLEGAN2_OPS``."""
    impl = impl or getattr(_scope, "impl", None) or os.environ.get("TF_STYLEGAN2_OPS", "auto")
    if impl not in IMPLS:
        raise ValueError(f"unknown ops implementation {impl!r}; expected one of {list(IMPLS)}")
    return impl


@_plain_python
def use_custom(impl: Optional[str] = None, dtype: Optional[tf.DType] = None, op: str = "op") -> bool:
    """Whether an op called now (on tensors of ``dtype``) should run the compiled kernel."""
    impl = requested(impl)
    if impl == "ref":
        return False
    insist = impl in ("custom", "cuda")
    if not insist and (_in_xla_context() or not (gpu_visible() or CPU_AUTO)):
        return False
    if dtype is not None and dtype not in KERNEL_DTYPES:
        warn_once(f"dtype:{op}:{dtype.name}", f"tf-stylegan2: the compiled {op} has no {dtype.name} kernel; "
                                              "using the reference op")
        return False
    lib = library()
    problem = gpu_problem() if lib is not None else (
        f"no compiled library found (build it with `{_rebuild_hint()}`)" if _missing() else _load_error)
    if impl == "cuda" and not problem and not gpu_visible():
        problem = "ops=cuda needs a GPU, and TensorFlow sees none"
    if problem:
        if insist:
            raise RuntimeError(f"compiled ops requested but unusable: {problem}")
        # Without a GPU, no library at all is the plain install (the reference ops are as right),
        # not worth a warning; a stale or broken one is.
        if gpu_visible() or not _missing():
            warn_once("library", f"tf-stylegan2 compiled ops unusable, using the reference ops: {problem}")
        return False
    return True


def _missing() -> bool:
    return not any(os.path.exists(p) for p in candidate_paths())
