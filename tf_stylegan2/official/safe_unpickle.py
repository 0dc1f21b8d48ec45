"""Reading NVIDIA's network pickles without executing anything they contain.

Python's ``pickle`` runs code by design: a pickle names functions and classes that the loader
imports and calls. NVIDIA's pickles lean on this: the TF1 release stores
``dnnlib.tflib.network.Network`` objects whose loader ``exec``s the network's source code, and
stylegan2-ada-pytorch stores every module through ``torch_utils.persistence``, whose loader also
``exec``s embedded source, plus torch tensors rebuilt by torch functions. Loading such a file with
``pickle.load`` hands control to whoever wrote the file.

:func:`load` instead runs a restricted unpickler. Every global the stream names is looked up in a
fixed table of our own stand-ins (:data:`_GLOBALS`); anything else stops the load with
:class:`UnsafePickleError` before it is imported, let alone called. The stand-ins only build data:

* ``dnnlib.tflib.network.Network`` -> :class:`TFNetwork` (its state: kwargs, variables, and the
  build source as an inert string);
* ``torch_utils.persistence._reconstruct_persistent_obj`` -> :class:`PersistentObject` (class name
  and state; the embedded module source is kept as a string and never executed);
* numpy arrays and scalars, rebuilt from their raw bytes for plain numeric dtypes only;
* torch tensors and parameters -> numpy arrays. A pickled torch storage is a nested
  ``torch.save`` stream (torch's legacy format); :func:`_load_torch_storage` parses it with a
  second restricted unpickler that accepts nothing but storage records, and bounds-checks every
  tensor view. torch itself is never imported.
* ``collections.OrderedDict``, ``dnnlib.util.EasyDict`` (as a plain dict), sets, and the
  protocol-2 bytes encoding.

Persistent ids (what ``torch.save`` archives use for storages) are refused at the top level.
"""

from __future__ import annotations

import collections
import io
import pickle
import re
from typing import Any, BinaryIO, Callable, Dict, Optional, Tuple

import numpy as np

from tf_stylegan2.fileio import UserError


class UnsafePickleError(UserError):
    """The pickle asks for something that is not plain network data (code, unknown classes)."""


class TFNetwork:
    """The state of a TF1 ``dnnlib.tflib.network.Network`` (what its ``__getstate__`` wrote).

    Attributes after loading: ``name``, ``build_func_name``, ``static_kwargs`` (dict),
    ``components`` (dict of TFNetwork), ``variables`` (list of (name, np.ndarray) pairs), ``version``.
    The build module's source is not kept.
    """

    __slots__ = ("state",)

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, dict):
            raise UnsafePickleError(f"a TF1 Network's state must be a dict, got {type(state).__name__}")
        self.state = state

    def __getattr__(self, name: str) -> Any:
        if name == "state":
            raise UnsafePickleError("a TF1 Network object has no state (malformed pickle)")
        try:
            return self.state[name]
        except KeyError:
            raise AttributeError(name) from None

    def __repr__(self) -> str:
        return f"TFNetwork({self.state.get('name')!r}, {self.state.get('build_func_name')!r})"


class PersistentObject:
    """An object stored by stylegan2-ada-pytorch's ``torch_utils.persistence``: class name + state.

    For a ``torch.nn.Module`` the state holds ``_parameters``, ``_buffers``, ``_modules`` and the
    constructor arguments ``_init_kwargs``. ``module_src`` is the embedded source, kept as text
    (only to recognise what produced the file); nothing ever executes it.
    """

    __slots__ = ("class_name", "state", "module_src")

    def __init__(self, class_name: str, state: dict, module_src: str):
        self.class_name = class_name
        self.state = state
        self.module_src = module_src

    def __setstate__(self, state: Any) -> None:
        raise UnsafePickleError("malformed pickle: state applied twice to a persistent object")

    def __repr__(self) -> str:
        return f"PersistentObject({self.class_name!r})"


class EasyDict(dict):
    """Stand-in for ``dnnlib.util.EasyDict``: a plain dict."""

    def __setstate__(self, state: Any) -> None:
        if state:  # EasyDict keeps everything in the dict itself; instance attributes are not data
            raise UnsafePickleError("malformed pickle: unexpected attributes on an EasyDict")


class _Function:
    """A callable stand-in for a global. It has no ``__dict__`` and refuses BUILD, so a stream can
    neither call it with a state nor change it."""

    __slots__ = ("qualname", "fn")

    def __init__(self, qualname: str, fn: Callable):
        object.__setattr__(self, "qualname", qualname)
        object.__setattr__(self, "fn", fn)

    def __call__(self, *args):
        return self.fn(*args)

    def __setattr__(self, name, value):
        raise UnsafePickleError(f"malformed pickle: cannot modify {self.qualname}")

    def __setstate__(self, state):
        raise UnsafePickleError(f"malformed pickle: cannot modify {self.qualname}")


# --- numpy ---------------------------------------------------------------------------------------

_DTYPE_CODE = re.compile(r"^[biufc]\d{1,2}$")


class _DType:
    """``numpy.dtype(code, align, copy)`` followed by BUILD with the byte order: plain numbers only."""

    __slots__ = ("code", "dtype")

    def __init__(self, code: Any, align: Any = False, copy: Any = False):
        if not isinstance(code, str) or not _DTYPE_CODE.match(code):
            raise UnsafePickleError(f"refusing numpy dtype {code!r}: only plain numeric arrays are accepted")
        self.code = code
        self.dtype = np.dtype(code)

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, tuple) or len(state) < 8 or state[1] not in ("<", ">", "|", "="):
            raise UnsafePickleError("malformed numpy dtype state")
        if any(s is not None for s in state[2:5]):
            raise UnsafePickleError("refusing a structured numpy dtype: only plain numeric arrays are accepted")
        self.dtype = np.dtype(self.code).newbyteorder(state[1]) if state[1] in "<>" else np.dtype(self.code)


def _numpy_dtype(d: Any) -> np.dtype:
    if not isinstance(d, _DType):
        raise UnsafePickleError("malformed pickle: a numpy array or scalar without a numpy dtype")
    return d.dtype


class _NDArrayType:
    """Marker for ``numpy.ndarray`` when it is passed to ``_reconstruct``."""

    def __setstate__(self, state):
        raise UnsafePickleError("malformed pickle: cannot modify numpy.ndarray")


_NDARRAY = _NDArrayType()


def _shape(shape: Any) -> Tuple[int, ...]:
    if not isinstance(shape, tuple) or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape):
        raise UnsafePickleError(f"malformed array shape {shape!r}")
    return shape


class _ArrayStub:
    """``numpy.core.multiarray._reconstruct(ndarray, (0,), b'b')`` + BUILD(version, shape, dtype,
    is_fortran, raw bytes): becomes an array once BUILD supplies the data."""

    __slots__ = ("array",)

    def __init__(self):
        self.array = None

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, tuple) or len(state) != 5 or self.array is not None:
            raise UnsafePickleError("malformed numpy array state")
        _, shape, dtype, is_fortran, raw = state
        self.array = _array_from_bytes(raw, _numpy_dtype(dtype), _shape(shape), "F" if is_fortran else "C")


def _array_from_bytes(raw: Any, dtype: np.dtype, shape: Tuple[int, ...], order: str) -> np.ndarray:
    if isinstance(raw, str):  # protocol 2 may store the bytes as a latin-1 string
        raw = raw.encode("latin-1")
    if not isinstance(raw, (bytes, bytearray)):
        raise UnsafePickleError("refusing a numpy array whose data is not raw bytes (object arrays are not accepted)")
    count = int(np.prod(shape, dtype=np.int64))
    if len(raw) != count * dtype.itemsize:
        raise UnsafePickleError(f"malformed numpy array: {len(raw)} bytes for shape {shape} of {dtype}")
    return np.frombuffer(bytes(raw), dtype=dtype).reshape(shape, order=order)


def _reconstruct(cls: Any, shape: Any, typecode: Any) -> _ArrayStub:
    if cls is not _NDARRAY:
        raise UnsafePickleError("refusing numpy _reconstruct of anything but numpy.ndarray")
    return _ArrayStub()


def _scalar(dtype: Any, raw: Any = None) -> Any:
    dtype = _numpy_dtype(dtype)
    return _array_from_bytes(raw, dtype, (), "C")[()]


def _frombuffer(buf: Any, dtype: Any, shape: Any, order: Any) -> np.ndarray:
    return _array_from_bytes(buf, _numpy_dtype(dtype), _shape(shape), "F" if order == "F" else "C")


# --- plain Python ---------------------------------------------------------------------------------


def _encode(text: Any, encoding: Any = None) -> bytes:
    """``_codecs.encode(str, 'latin1')``: how protocol 2 stores bytes."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise UnsafePickleError("refusing _codecs.encode with anything but (str, 'latin1')")
    return text.encode("latin-1")


def _empty_bytes(*args: Any) -> bytes:
    """``bytes()``: how protocol 2 stores empty bytes."""
    if args:
        raise UnsafePickleError("refusing bytes(...) with arguments")
    return b""


def _new_set(items: Any = ()) -> set:
    return set(_check_hashables(items))


def _new_frozenset(items: Any = ()) -> frozenset:
    return frozenset(_check_hashables(items))


def _check_hashables(items: Any) -> list:
    if not isinstance(items, (list, tuple)):
        raise UnsafePickleError("malformed pickle: a set built from something other than a list")
    return list(items)


# --- torch_utils.persistence ----------------------------------------------------------------------


def _reconstruct_persistent_obj(meta: Any) -> PersistentObject:
    if not isinstance(meta, dict):
        raise UnsafePickleError("malformed persistent object: its description is not a dict")
    if meta.get("type") != "class":
        raise UnsafePickleError(f"refusing persistent object of type {meta.get('type')!r}")
    class_name, state, src = meta.get("class_name"), meta.get("state"), meta.get("module_src")
    if not isinstance(class_name, str) or not isinstance(src, str):
        raise UnsafePickleError("malformed persistent object: class name or module source missing")
    if not isinstance(state, dict):
        raise UnsafePickleError(f"malformed persistent object {class_name}: its state is not a dict")
    return PersistentObject(class_name, state, src)


# --- torch tensors --------------------------------------------------------------------------------

_TORCH_STORAGE_DTYPES = {
    "FloatStorage": np.dtype("<f4"),
    "DoubleStorage": np.dtype("<f8"),
    "HalfStorage": np.dtype("<f2"),
    "BFloat16Storage": np.dtype("<u2"),  # widened to float32 below; numpy has no bfloat16
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}
TORCH_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_TORCH_LEGACY_PROTOCOL = 1001


class _TorchStorage:
    """A torch storage read back as a flat numpy array."""

    __slots__ = ("array",)

    def __init__(self, array: np.ndarray):
        self.array = array

    def __setstate__(self, state):
        raise UnsafePickleError("malformed pickle: cannot modify a torch storage")


class _StorageType:
    """Marker for ``torch.<Type>Storage`` inside a nested torch.save stream."""

    __slots__ = ("name", "dtype")

    def __init__(self, name: str):
        self.name, self.dtype = name, _TORCH_STORAGE_DTYPES[name]

    def __setstate__(self, state):
        raise UnsafePickleError("malformed pickle: cannot modify a torch storage type")


class _StorageRecord:
    """A storage announced by a persistent id; its bytes follow the pickle in the stream."""

    __slots__ = ("type", "key", "numel")

    def __init__(self, type_: _StorageType, key: str, numel: int):
        self.type, self.key, self.numel = type_, key, numel

    def __setstate__(self, state):
        raise UnsafePickleError("malformed pickle: cannot modify a torch storage")


class _StorageUnpickler(pickle.Unpickler):
    """Reads the pickles of a legacy torch.save stream holding one storage, and nothing else."""

    def __init__(self, file: BinaryIO):
        super().__init__(file)
        self.records: Dict[str, _StorageRecord] = {}

    def find_class(self, module: str, name: str) -> Any:
        if module == "torch" and name in _TORCH_STORAGE_DTYPES:
            return _StorageType(name)
        raise UnsafePickleError(f"refusing {module}.{name} inside a pickled torch storage")

    def persistent_load(self, pid: Any) -> _StorageRecord:
        if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage"):
            kind = pid[0] if isinstance(pid, tuple) and pid else type(pid).__name__
            raise UnsafePickleError(f"refusing a torch.save record of kind {kind!r} (only storages are accepted)")
        _, type_, key, location, numel, view = pid
        if not isinstance(type_, _StorageType) or not isinstance(key, str) or not isinstance(location, str):
            raise UnsafePickleError("malformed torch storage record")
        if not isinstance(numel, int) or numel < 0 or view is not None:
            raise UnsafePickleError("unsupported torch storage record (a storage view or a bad size)")
        if key not in self.records:
            self.records[key] = _StorageRecord(type_, key, numel)
        return self.records[key]


def _load_torch_storage(data: Any) -> _TorchStorage:
    """``torch.storage._load_from_bytes``: parses the legacy torch.save stream of one storage.

    Layout: pickled magic number, protocol version and system info; the pickled storage (a
    persistent id ``('storage', type, key, location, numel, None)``); the pickled list of storage
    keys; then per key an int64 element count and the raw little-endian elements.
    """
    if not isinstance(data, (bytes, bytearray)):
        raise UnsafePickleError("malformed torch storage: not bytes")
    f = io.BytesIO(bytes(data))
    if f.read(4).startswith(b"PK"):
        raise UnsafePickleError("unsupported torch storage encoding (a zip archive); expected torch's legacy stream")
    f.seek(0)
    reader = _StorageUnpickler(f)
    if reader.load() != TORCH_LEGACY_MAGIC or reader.load() != _TORCH_LEGACY_PROTOCOL:
        raise UnsafePickleError("malformed torch storage: bad magic number or protocol version")
    sys_info = reader.load()
    if not isinstance(sys_info, dict) or sys_info.get("little_endian") is not True:
        raise UnsafePickleError("unsupported torch storage: not written on a little-endian machine")
    storage = reader.load()
    keys = reader.load()
    if not isinstance(storage, _StorageRecord) or not isinstance(keys, list) or set(keys) != set(reader.records):
        raise UnsafePickleError("malformed torch storage: the stream does not hold exactly one storage")
    arrays = {}
    for key in keys:
        record = reader.records[key]
        count = int.from_bytes(f.read(8), "little", signed=True)
        raw = f.read(count * record.type.dtype.itemsize)
        if count != record.numel or len(raw) != count * record.type.dtype.itemsize:
            raise UnsafePickleError("malformed torch storage: truncated or inconsistent data")
        array = np.frombuffer(raw, dtype=record.type.dtype)
        if record.type.name == "BFloat16Storage":
            array = (array.astype(np.uint32) << 16).view(np.float32)
        arrays[key] = array
    return _TorchStorage(arrays[storage.key])


def _rebuild_tensor(storage: Any, offset: Any, size: Any, stride: Any, *rest: Any) -> np.ndarray:
    """``torch._utils._rebuild_tensor(_v2)``: a strided view of a storage, copied out as an array."""
    if not isinstance(storage, _TorchStorage):
        raise UnsafePickleError("malformed torch tensor: its storage is not a pickled torch storage")
    size, stride = _shape(tuple(size)), _shape(tuple(stride))
    if not isinstance(offset, int) or offset < 0 or len(size) != len(stride):
        raise UnsafePickleError("malformed torch tensor: bad offset, size or stride")
    if len(rest) >= 2 and rest[1]:
        raise UnsafePickleError("refusing a torch tensor with backward hooks")
    flat = storage.array
    if 0 in size:
        return np.zeros(size, flat.dtype)
    last = offset + sum((n - 1) * s for n, s in zip(size, stride))
    if last >= flat.size:
        raise UnsafePickleError("malformed torch tensor: its view reaches past the end of its storage")
    view = np.lib.stride_tricks.as_strided(
        flat[offset:], shape=size, strides=[s * flat.itemsize for s in stride], writeable=False
    )
    return np.array(view)


def _rebuild_parameter(data: Any, requires_grad: Any = False, hooks: Any = None, state: Any = None) -> np.ndarray:
    """``torch._utils._rebuild_parameter(_with_state)``: a Parameter is its tensor."""
    if not isinstance(data, np.ndarray):
        raise UnsafePickleError("malformed torch parameter: its data is not a tensor")
    if hooks or state:
        raise UnsafePickleError("refusing a torch parameter with hooks or extra state")
    return data


def _torch_size(dims: Any = ()) -> tuple:
    return _shape(tuple(dims))


# --- the table ------------------------------------------------------------------------------------


def _fn(module: str, name: str, fn: Callable) -> Tuple[Tuple[str, str], _Function]:
    return (module, name), _Function(f"{module}.{name}", fn)


_GLOBALS: Dict[Tuple[str, str], Any] = dict(
    [
        (("collections", "OrderedDict"), collections.OrderedDict),
        (("dnnlib.util", "EasyDict"), EasyDict),
        (("dnnlib.tflib.network", "Network"), TFNetwork),
        (("numpy", "ndarray"), _NDARRAY),
        _fn("builtins", "set", _new_set),
        _fn("builtins", "frozenset", _new_frozenset),
        _fn("__builtin__", "set", _new_set),  # Python 3 writes protocol 2 with Python 2 names
        _fn("__builtin__", "frozenset", _new_frozenset),
        _fn("_codecs", "encode", _encode),
        _fn("builtins", "bytes", _empty_bytes),
        _fn("__builtin__", "bytes", _empty_bytes),
        _fn("numpy", "dtype", _DType),
        _fn("numpy.core.multiarray", "_reconstruct", _reconstruct),
        _fn("numpy._core.multiarray", "_reconstruct", _reconstruct),
        _fn("numpy.core.multiarray", "scalar", _scalar),
        _fn("numpy._core.multiarray", "scalar", _scalar),
        _fn("numpy.core.numeric", "_frombuffer", _frombuffer),
        _fn("numpy._core.numeric", "_frombuffer", _frombuffer),
        _fn("torch_utils.persistence", "_reconstruct_persistent_obj", _reconstruct_persistent_obj),
        _fn("torch.storage", "_load_from_bytes", _load_torch_storage),
        _fn("torch._utils", "_rebuild_tensor", _rebuild_tensor),
        _fn("torch._utils", "_rebuild_tensor_v2", _rebuild_tensor),
        _fn("torch._utils", "_rebuild_parameter", _rebuild_parameter),
        _fn("torch._utils", "_rebuild_parameter_with_state", _rebuild_parameter),
        _fn("torch", "Size", _torch_size),
    ]
)


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves globals only through :data:`_GLOBALS` and refuses persistent ids."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _GLOBALS[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"refusing to load {module}.{name}: the file asks to run code that is not part of a network "
                "(only NVIDIA's network data types are accepted)"
            ) from None

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError("refusing a persistent id: this is not a plain network pickle (a torch.save file?)")


def _resolve(obj: Any, memo: Dict[int, Any]) -> Any:
    """Replaces stand-ins by their data (numpy arrays, dicts), keeping shared references shared."""
    key = id(obj)
    if key in memo:
        return memo[key]
    if isinstance(obj, _ArrayStub):
        if obj.array is None:
            raise UnsafePickleError("malformed numpy array: no data")
        out = obj.array
    elif isinstance(obj, dict):  # dict, OrderedDict, EasyDict -> dict
        out = memo[key] = {}
        for k, v in obj.items():
            out[_resolve(k, memo)] = _resolve(v, memo)
    elif isinstance(obj, list):
        out = memo[key] = []
        out.extend(_resolve(v, memo) for v in obj)
    elif isinstance(obj, tuple):
        out = tuple(_resolve(v, memo) for v in obj)
    elif isinstance(obj, (set, frozenset)):
        out = type(obj)(_resolve(v, memo) for v in obj)
    elif isinstance(obj, TFNetwork):
        out = memo[key] = TFNetwork()
        out.state = {}
        out.state.update(_resolve(obj.state, memo))
    elif isinstance(obj, PersistentObject):
        out = memo[key] = PersistentObject(obj.class_name, {}, obj.module_src)
        out.state.update(_resolve(obj.state, memo))
    elif obj is None or isinstance(obj, (bool, int, float, complex, str, bytes, bytearray, np.ndarray, np.generic)):
        out = obj
    else:
        raise UnsafePickleError(f"malformed pickle: unexpected {type(obj).__name__} in the data")
    memo[key] = out
    return out


def load(file: BinaryIO, what: Optional[str] = None) -> Any:
    """Unpickles ``file`` with :class:`RestrictedUnpickler` and returns plain data.

    Official objects come back as :class:`TFNetwork` / :class:`PersistentObject`, arrays and
    tensors as numpy arrays, every dict as a plain dict. Raises :class:`UnsafePickleError` for
    anything that would run code, and :class:`UserError` for a damaged or non-pickle file.
    """
    what = what or getattr(file, "name", "the file")
    try:
        return _resolve(RestrictedUnpickler(file).load(), {})
    except UserError:
        raise
    except RecursionError:
        raise UserError(f"{what} is not a network pickle (nested too deeply)") from None
    except Exception as e:  # pickle raises many types for damaged streams
        if isinstance(e, EOFError) or "truncated" in str(e):
            raise UserError(f"{what} is truncated (the pickle ends early)") from None
        raise UserError(f"{what} is not a readable pickle ({type(e).__name__}: {e})") from None
