"""The one restricted reader of untrusted files: NVIDIA's pickles and torch's file formats,
without executing anything they contain and within a memory budget.

Python's ``pickle`` runs code by design: a pickle names functions and classes that the loader
imports and calls. NVIDIA's pickles lean on this: the TF1 release stores
``dnnlib.tflib.network.Network`` objects whose loader ``exec``s the network's source code, and
stylegan2-ada-pytorch stores every module through ``torch_utils.persistence``, whose loader also
``exec``s embedded source, plus torch tensors rebuilt by torch functions. Loading such a file with
``pickle.load`` (or ``torch.load`` / ``torch.jit.load``) hands control to whoever wrote the file.

Every pickle here goes through :class:`RestrictedUnpickler`. Every global the stream names is
looked up in fixed tables of our own stand-ins; anything else stops the load with
:class:`UnsafePickleError` before it is imported, let alone called. The stand-ins only build data:

* ``dnnlib.tflib.network.Network`` -> :class:`TFNetwork` (its state: kwargs, variables, and the
  build source as an inert string);
* ``torch_utils.persistence._reconstruct_persistent_obj`` -> :class:`PersistentObject` (class name
  and state; the embedded module source is kept as a string and never executed);
* numpy arrays and scalars, rebuilt from their raw bytes for plain numeric dtypes only;
* torch tensors and parameters -> numpy arrays, every view bounds-checked against its storage.
  A storage is a persistent id ``('storage', <Type>Storage, key, location, numel[, view])``
  whose elements come from the legacy stream, an archive member, or (inside NVIDIA's ada
  pickles) a nested legacy ``torch.save`` stream; torch itself is never imported;
* TorchScript objects (``__torch__.<class>``, only in TorchScript archives) -> :class:`ScriptObject`
  (class name + attribute dict); a class that restores itself with its own ``__setstate__`` code
  is refused, and the archive's ``code/`` is never opened;
* ``collections.OrderedDict``, ``dnnlib.util.EasyDict`` (as a plain dict), sets, the protocol-2
  bytes encoding, ``torch.Size`` and TorchScript's typed-list helpers.

Before Python's unpickler sees a pickle, :func:`_scan` walks its opcodes without building
anything: declared lengths must fit the file, memo indices must be sequential (Python sizes its
memo table by the largest index), and every opcode is charged to the file's
:class:`~tf_stylegan2.official.budget.Budget` (the rule is stated in :mod:`.budget`), as are
storages and tensors, so no file can make the reader allocate more than the budget.

Entry points: :func:`load` (a network pickle -> plain data) and :func:`load_torch` (a
``torch.save`` file in either format, or a ``torch.jit.save`` archive -> :class:`TorchFile`).
"""

from __future__ import annotations

import collections
import dataclasses
import io
import math
import os
import pickle
import pickletools
import re
from typing import Any, BinaryIO, Callable, Dict, Optional, Tuple

import numpy as np

from tf_stylegan2.fileio import UserError, sha256_file
from tf_stylegan2.official.budget import OPCODE_BYTES, Budget, ResourceLimitError
from tf_stylegan2.official.torch_files import ZIP_MAGIC, TorchArchive

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



class ScriptObject:
    """An object of a TorchScript class (``__torch__.<name>``, e.g. a scripted module), as data.

    ``attributes`` maps attribute names to their values: submodules are ScriptObjects again,
    parameters and buffers numpy arrays, other attributes plain values (``training``, ...).
    """

    __slots__ = ("class_name", "attributes")

    def __init__(self, class_name: str, attributes: Dict[str, Any]):
        self.class_name, self.attributes = class_name, attributes

    def __setstate__(self, state: Any) -> None:
        raise UnsafePickleError("malformed pickle: state applied to a TorchScript object twice")

    def __repr__(self) -> str:
        return f"ScriptObject({self.class_name!r})"


class _Context:
    """What the stand-ins of one file share: its budget and, in torch files, where storages come from."""

    __slots__ = ("budget", "what", "storages", "script", "classes")

    def __init__(self, budget: Budget, what: str, storages: Optional["_Storages"], script: bool):
        self.budget, self.what, self.storages, self.script = budget, what, storages, script
        self.classes: Dict[str, type] = {}


class _Function:
    """A callable stand-in for a global, bound to the file being read. It has no ``__dict__`` and
    refuses BUILD, so a stream can neither call it with a state nor change it."""

    __slots__ = ("qualname", "fn", "ctx")

    def __init__(self, qualname: str, fn: Callable, ctx: Optional[_Context] = None):
        object.__setattr__(self, "qualname", qualname)
        object.__setattr__(self, "fn", fn)
        object.__setattr__(self, "ctx", ctx)

    def bind(self, ctx: _Context) -> "_Function":
        return _Function(self.qualname, self.fn, ctx)

    def __call__(self, *args):
        return self.fn(self.ctx, *args)

    def __setattr__(self, name, value):
        raise UnsafePickleError(f"malformed pickle: cannot modify {self.qualname}")

    def __setstate__(self, state):
        raise UnsafePickleError(f"malformed pickle: cannot modify {self.qualname}")


# --- numpy ---------------------------------------------------------------------------------------

_DTYPE_CODE = re.compile(r"^[biufc]\d{1,2}$")
# No legitimate array has a dimension this large; it keeps element counts far from int64 overflow.
_MAX_DIM = 1 << 40


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
    if isinstance(shape, list):
        shape = tuple(shape)
    if not isinstance(shape, tuple) or not all(
        isinstance(s, int) and not isinstance(s, bool) and 0 <= s <= _MAX_DIM for s in shape
    ):
        raise UnsafePickleError(f"malformed array shape {shape!r}"[:200])
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
    """A read-only array over ``raw`` (no copy: the pickle's bytes were charged when scanned)."""
    if isinstance(raw, str):  # protocol 2 may store the bytes as a latin-1 string
        raw = raw.encode("latin-1")
    if not isinstance(raw, (bytes, bytearray)):
        raise UnsafePickleError("refusing a numpy array whose data is not raw bytes (object arrays are not accepted)")
    if len(raw) != math.prod(shape) * dtype.itemsize:
        raise UnsafePickleError(f"malformed numpy array: {len(raw)} bytes for shape {shape} of {dtype}")
    return np.frombuffer(bytes(raw), dtype=dtype).reshape(shape, order=order)


def _reconstruct(ctx: _Context, cls: Any, shape: Any, typecode: Any) -> _ArrayStub:
    if cls is not _NDARRAY:
        raise UnsafePickleError("refusing numpy _reconstruct of anything but numpy.ndarray")
    return _ArrayStub()


def _scalar(ctx: _Context, dtype: Any, raw: Any = None) -> Any:
    return _array_from_bytes(raw, _numpy_dtype(dtype), (), "C")[()]


def _frombuffer(ctx: _Context, buf: Any, dtype: Any, shape: Any, order: Any) -> np.ndarray:
    return _array_from_bytes(buf, _numpy_dtype(dtype), _shape(shape), "F" if order == "F" else "C")


def _new_dtype(ctx: _Context, *args: Any) -> _DType:
    return _DType(*args)


# --- plain Python ---------------------------------------------------------------------------------


def _encode(ctx: _Context, text: Any, encoding: Any = None) -> bytes:
    """``_codecs.encode(str, 'latin1')``: how protocol 2 stores bytes."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise UnsafePickleError("refusing _codecs.encode with anything but (str, 'latin1')")
    return text.encode("latin-1")


def _empty_bytes(ctx: _Context, *args: Any) -> bytes:
    """``bytes()``: how protocol 2 stores empty bytes."""
    if args:
        raise UnsafePickleError("refusing bytes(...) with arguments")
    return b""


def _new_set(ctx: _Context, items: Any = ()) -> set:
    return set(_check_hashables(items))


def _new_frozenset(ctx: _Context, items: Any = ()) -> frozenset:
    return frozenset(_check_hashables(items))


def _check_hashables(items: Any) -> list:
    if not isinstance(items, (list, tuple)):
        raise UnsafePickleError("malformed pickle: a set built from something other than a list")
    return list(items)


# --- torch_utils.persistence ----------------------------------------------------------------------


def _reconstruct_persistent_obj(ctx: _Context, meta: Any) -> PersistentObject:
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


# --- torch storages and tensors -------------------------------------------------------------------

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


class _StorageType:
    """Marker for ``torch.<Type>Storage`` in a storage's persistent id."""

    __slots__ = ("name", "dtype")

    def __init__(self, name: str):
        self.name, self.dtype = name, _TORCH_STORAGE_DTYPES[name]

    @property
    def out_itemsize(self) -> int:
        return 4 if self.name == "BFloat16Storage" else self.dtype.itemsize

    def __setstate__(self, state):
        raise UnsafePickleError("malformed pickle: cannot modify a torch storage type")


class _StorageRecord:
    """A storage named by a persistent id: its type and size now, its elements once read.

    A legacy storage *view* (old torch.save files) is a record over ``numel`` elements of ``root``
    from ``offset``.
    """

    __slots__ = ("type", "key", "numel", "array", "source", "root", "offset")

    def __init__(self, type_: _StorageType, key: str, numel: int, source: Optional["_Storages"] = None,
                 root: Optional["_StorageRecord"] = None, offset: int = 0):
        self.type, self.key, self.numel, self.source = type_, key, numel, source
        self.root, self.offset, self.array = root, offset, None

    def data(self) -> np.ndarray:
        """The elements as a flat array (bfloat16 widened to float32), read from the source when first needed."""
        if self.root is not None:
            return self.root.data()[self.offset:self.offset + self.numel]
        if self.array is None:
            if self.source is None:
                raise UnsafePickleError(f"malformed torch file: the data of storage {self.key!r} is missing")
            self.source.read(self)
        return self.array

    def set_elements(self, raw: Any, budget: Budget) -> None:
        array = np.frombuffer(raw, dtype=self.type.dtype, count=self.numel)
        if self.type.name == "BFloat16Storage":
            budget.charge(4 * self.numel, f"widening bfloat16 storage {self.key!r} to float32")
            array = (array.astype(np.uint32) << 16).view(np.float32)
        self.array = array

    def __setstate__(self, state):
        raise UnsafePickleError("malformed pickle: cannot modify a torch storage")


class _Storages:
    """The storages of one pickle, by key, from their persistent ids; subclasses say where elements are."""

    def __init__(self, what: str, legacy: bool):
        self.what, self.legacy = what, legacy
        self.records: Dict[str, _StorageRecord] = {}  # roots and views, by key
        self.roots: Dict[str, _StorageRecord] = {}

    def record(self, pid: Any) -> _StorageRecord:
        size = 6 if self.legacy else 5
        if not (isinstance(pid, tuple) and len(pid) == size and pid[0] == "storage"):
            kind = pid[0] if isinstance(pid, tuple) and pid else type(pid).__name__
            if isinstance(pid, tuple) and pid and pid[0] == "storage":
                raise UnsafePickleError(f"malformed torch storage record ({len(pid)} fields, expected {size})")
            raise UnsafePickleError(f"refusing a torch.save record of kind {str(kind)[:50]!r} (only storages are accepted)")
        type_, key, location, numel = pid[1:5]
        view = pid[5] if self.legacy else None
        if not isinstance(type_, _StorageType) or not isinstance(key, str) or not isinstance(location, str):
            raise UnsafePickleError("malformed torch storage record")
        if not isinstance(numel, int) or isinstance(numel, bool) or not 0 <= numel <= _MAX_DIM:
            raise UnsafePickleError(f"malformed torch storage record (size {numel!r})"[:200])
        root = self.roots.get(key)
        if root is None:
            root = self.roots[key] = self.records[key] = _StorageRecord(type_, key, numel, self)
        elif root.type.name != type_.name or root.numel != numel:
            raise UnsafePickleError(f"malformed torch file: storage {key!r} is declared twice with different types or sizes")
        if view is None:
            return root
        if not (isinstance(view, tuple) and len(view) == 3 and isinstance(view[0], str)
                and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in view[1:])):
            raise UnsafePickleError("malformed torch storage view record")
        view_key, offset, view_numel = view
        if offset + view_numel > numel:
            raise UnsafePickleError(f"malformed torch file: storage view {view_key!r} reaches past the end of its storage")
        known = self.records.get(view_key)
        if known is None:
            known = self.records[view_key] = _StorageRecord(type_, view_key, view_numel, root=root, offset=offset)
        elif known.root is not root or known.offset != offset or known.numel != view_numel:
            raise UnsafePickleError(f"malformed torch file: storage view {view_key!r} is declared twice differently")
        return known

    def read(self, record: _StorageRecord) -> None:
        raise UnsafePickleError(f"malformed torch file: the data of storage {record.key!r} is missing")


class _ArchiveStorages(_Storages):
    """Storages of a zip archive: ``<folder>/<key>`` members, read (and charged) when first used."""

    def __init__(self, archive: TorchArchive, folder: str, budget: Budget):
        super().__init__(archive.what, legacy=False)
        self.archive, self.folder, self.budget = archive, folder, budget

    def read(self, record: _StorageRecord) -> None:
        name = self.archive.storage_member(self.folder, record.key)
        record.set_elements(self.archive.read(name, record.numel * record.type.dtype.itemsize), self.budget)


def _rebuild_tensor(ctx: _Context, storage: Any, offset: Any, size: Any, stride: Any, *rest: Any) -> "_TensorStub":
    """``torch._utils._rebuild_tensor(_v2)``: a strided view of a storage, charged at its full size."""
    if not isinstance(storage, _StorageRecord):
        raise UnsafePickleError("malformed torch tensor: its storage is not a pickled torch storage")
    if not isinstance(size, (tuple, list)) or not isinstance(stride, (tuple, list)):
        raise UnsafePickleError("malformed torch tensor: bad size or stride")
    size, stride = _shape(size), _shape(stride)
    if not isinstance(offset, int) or isinstance(offset, bool) or not 0 <= offset <= _MAX_DIM or len(size) != len(stride):
        raise UnsafePickleError("malformed torch tensor: bad offset, size or stride")
    if len(rest) >= 2 and rest[1]:
        raise UnsafePickleError("refusing a torch tensor with backward hooks")
    if len(rest) >= 3 and rest[2]:
        raise UnsafePickleError("refusing a torch tensor with extra metadata (a tensor subclass?)")
    numel = math.prod(size)
    if numel and offset + sum((n - 1) * s for n, s in zip(size, stride)) >= storage.numel:
        raise UnsafePickleError("malformed torch tensor: its view reaches past the end of its storage")
    ctx.budget.charge(numel * storage.type.out_itemsize, f"a tensor of shape {list(size)}")
    return _TensorStub(storage, offset, size, stride)


class _TensorStub:
    """A checked tensor view; :func:`_resolve` turns it into an array once the storage's data is in."""

    __slots__ = ("storage", "offset", "size", "stride")

    def __init__(self, storage: _StorageRecord, offset: int, size: Tuple[int, ...], stride: Tuple[int, ...]):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride

    def array(self) -> np.ndarray:
        """Contiguous views share the storage (read-only); other views are copied (their size was charged)."""
        flat = self.storage.data()
        if math.prod(self.size) == 0:
            return np.zeros(self.size, flat.dtype)
        view = np.lib.stride_tricks.as_strided(
            flat[self.offset:], shape=self.size, strides=[s * flat.itemsize for s in self.stride], writeable=False
        )
        return view if view.flags.c_contiguous else np.array(view)

    def __setstate__(self, state):
        raise UnsafePickleError("malformed pickle: cannot modify a torch tensor")


def _rebuild_parameter(ctx: _Context, data: Any, requires_grad: Any = False, hooks: Any = None, state: Any = None):
    """``torch._utils._rebuild_parameter(_with_state)``: a Parameter is its tensor."""
    if not isinstance(data, _TensorStub):
        raise UnsafePickleError("malformed torch parameter: its data is not a tensor")
    if hooks or state:
        raise UnsafePickleError("refusing a torch parameter with hooks or extra state")
    return data


def _torch_size(ctx: _Context, dims: Any = ()) -> tuple:
    return _shape(dims)


def _load_torch_storage(ctx: _Context, data: Any) -> _StorageRecord:
    """``torch.storage._load_from_bytes``: one storage as a nested legacy torch.save stream (ada pickles)."""
    if not isinstance(data, (bytes, bytearray)):
        raise UnsafePickleError("malformed torch storage: not bytes")
    data = bytes(data)
    if data.startswith(b"PK"):
        raise UnsafePickleError("unsupported torch storage encoding (a zip archive); expected torch's legacy stream")
    record = _read_legacy(io.BytesIO(data), ctx.budget, "a pickled torch storage", _NO_GLOBALS, buffer=data)
    if not isinstance(record, _StorageRecord):
        raise UnsafePickleError("malformed torch storage: the stream does not hold exactly one storage")
    return record


# --- TorchScript ----------------------------------------------------------------------------------


class _ScriptClassType(type):
    """The type of the per-file stand-in classes for ``__torch__`` names: nothing may change them."""

    def __setattr__(cls, name, value):
        raise UnsafePickleError(f"malformed pickle: cannot modify TorchScript class {cls.class_name}")


class _ScriptRecord(metaclass=_ScriptClassType):
    """What ``NEWOBJ`` of a ``__torch__`` class makes; torch's pickler follows it with one BUILD of
    the attribute dict. A class with ``__getstate__`` / ``__setstate__`` methods stores something
    else there, which only its TorchScript ``__setstate__`` could interpret: refused."""

    __slots__ = ("attributes",)
    class_name = "__torch__"

    def __new__(cls, *args):
        if args:
            raise UnsafePickleError(f"refusing TorchScript class {cls.class_name} constructed with arguments")
        return super().__new__(cls)

    def __setstate__(self, state: Any) -> None:
        if type(state) is not dict:
            raise UnsafePickleError(
                f"refusing TorchScript class {self.class_name}: it restores its state with its own __setstate__ "
                "code, which this reader never runs"
            )
        if hasattr(self, "attributes") or not all(isinstance(k, str) for k in state):
            raise UnsafePickleError(f"malformed TorchScript object {self.class_name}")
        self.attributes = state


_SCRIPT_NAME = re.compile(r"^__torch__(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_CLASS_BYTES = 4096  # a Python class object with its dict


def _script_class(ctx: _Context, module: str, name: str) -> type:
    qualname = f"{module}.{name}"
    if not _SCRIPT_NAME.match(qualname) or len(qualname) > 512:
        raise UnsafePickleError(f"refusing TorchScript class {qualname[:100]!r}: not a TorchScript class name")
    if qualname.startswith("__torch__.torch.classes."):
        raise UnsafePickleError(f"refusing TorchScript class {qualname}: a custom C++ class, restored by its own code")
    cls = ctx.classes.get(qualname)
    if cls is None:
        ctx.budget.charge(_CLASS_BYTES, f"TorchScript class {qualname}")
        cls = ctx.classes[qualname] = _ScriptClassType("ScriptRecord", (_ScriptRecord,),
                                                       {"__slots__": (), "class_name": qualname})
    return cls


class _TaggedDict(dict):
    """A dict that ``torch.jit._pickle.restore_type_tag`` typed: a value, never an attribute table."""


def _restore_type_tag(ctx: _Context, value: Any, type_str: Any) -> Any:
    if not isinstance(type_str, str):
        raise UnsafePickleError("malformed TorchScript type tag")
    return _TaggedDict(value) if isinstance(value, dict) else value


def _typed_list(ctx: _Context, items: Any) -> list:
    """``torch.jit._pickle.build_{int,double,bool,tensor}list``: the list itself."""
    if not isinstance(items, list):
        raise UnsafePickleError("malformed TorchScript list")
    return items


# --- the tables -----------------------------------------------------------------------------------


def _fn(module: str, name: str, fn: Callable) -> Tuple[Tuple[str, str], _Function]:
    return (module, name), _Function(f"{module}.{name}", fn)


# Globals of network pickles (and of the pickles inside torch files).
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
        _fn("numpy", "dtype", _new_dtype),
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
# Accepted only where persistent ids name storages (torch files, nested storage streams).
_STORAGE_TYPES: Dict[Tuple[str, str], Any] = {("torch", name): _StorageType(name) for name in _TORCH_STORAGE_DTYPES}
# Accepted only in a TorchScript archive's pickles, with the ``__torch__`` classes.
_SCRIPT_GLOBALS: Dict[Tuple[str, str], Any] = dict(
    [_fn("torch.jit._pickle", name, _typed_list)
     for name in ("build_intlist", "build_doublelist", "build_boollist", "build_tensorlist")]
    + [_fn("torch.jit._pickle", "restore_type_tag", _restore_type_tag)]
)
_NO_GLOBALS: Dict[Tuple[str, str], Any] = {}


# --- the opcode scan ------------------------------------------------------------------------------

# code -> (name, argument width or pickletools' variable-length marker, lines for text arguments)
_OPCODES = {
    op.code.encode("latin-1"): (op.name, op.arg.n if op.arg else 0,
                                2 if op.arg is not None and op.arg.name == "stringnl_noescape_pair" else 1)
    for op in pickletools.opcodes
}
_LENGTH_PREFIX = {  # marker -> (bytes of the length, signed)
    pickletools.TAKEN_FROM_ARGUMENT1: (1, False),
    pickletools.TAKEN_FROM_ARGUMENT4: (4, True),
    pickletools.TAKEN_FROM_ARGUMENT4U: (4, False),
    pickletools.TAKEN_FROM_ARGUMENT8U: (8, False),
}
_TEXT_OPCODES = {"UNICODE", "BINUNICODE", "SHORT_BINUNICODE", "BINUNICODE8"}  # decoded to str: up to 4 bytes a character
_LINE_CHUNK = 1 << 16


def _scan(f: BinaryIO, budget: Budget, what: str) -> None:
    """Walks one pickle from ``f``'s position to its STOP without building anything, then rewinds.

    Refuses declared lengths beyond the end of the file (Python's unpickler would allocate them
    first), memo indices that skip ahead (it sizes its memo table by the largest index), and
    charges every opcode and argument to ``budget``.
    """
    start = f.tell()
    end = f.seek(0, 2)
    f.seek(start)
    read, readline = f.read, f.readline
    charged, memo_top = 0, 0
    while True:
        code = read(1)
        if not code:
            raise UserError(f"{what} is truncated (the pickle ends early)")
        op = _OPCODES.get(code)
        if op is None:
            raise UserError(f"{what} is not a readable pickle (invalid opcode {code!r} at byte {f.tell() - 1})")
        name, n, lines = op
        size, arg = 0, b""
        if n > 0:
            arg = read(n)
            if len(arg) < n:
                raise UserError(f"{what} is truncated (the pickle ends early)")
            size = n
        elif n == 0:
            pass
        elif n == pickletools.UP_TO_NEWLINE:
            for line in range(lines):
                chunk = readline(_LINE_CHUNK)
                arg = arg or chunk
                size += len(chunk)
                while chunk and not chunk.endswith(b"\n"):
                    chunk = readline(_LINE_CHUNK)
                    size += len(chunk)
                if not chunk:
                    raise UserError(f"{what} is truncated (the pickle ends early)")
        else:
            width, signed = _LENGTH_PREFIX[n]
            raw = read(width)
            if len(raw) < width:
                raise UserError(f"{what} is truncated (the pickle ends early)")
            size = int.from_bytes(raw, "little", signed=signed)
            left = end - f.tell()
            if size < 0 or size > left:
                raise UserError(f"{what} is truncated or damaged: a pickle opcode declares {size} bytes where {left} remain")
            f.seek(size, 1)
        if name in ("PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE"):
            index = memo_top if name == "MEMOIZE" else _memo_index(name, arg, what)
            if index > memo_top:
                raise ResourceLimitError(
                    f"{what}: the pickle stores memo entry {index} when only {memo_top} exist (Python would allocate a "
                    "memo table for every index up to it); refusing it: memo indices must be sequential"
                )
            memo_top = max(memo_top, index + 1)
        elif name == "FRAME":
            size = int.from_bytes(arg, "little")
            if size > end - f.tell():
                raise UserError(f"{what} is truncated or damaged: a pickle frame declares {size} bytes where "
                                f"{end - f.tell()} remain")
        charged += OPCODE_BYTES + (4 * size if name in _TEXT_OPCODES else size)
        if charged > budget.left:
            budget.charge(charged, f"the objects of its pickle (up to byte {f.tell()})")
        if name == "STOP":
            break
    budget.charge(charged, "the objects of its pickle")
    f.seek(start)


def _memo_index(name: str, arg: bytes, what: str) -> int:
    if name != "PUT":
        return int.from_bytes(arg, "little")
    try:
        return int(arg)
    except ValueError:
        raise UserError(f"{what} is not a readable pickle (a bad memo index)") from None


# --- the unpickler --------------------------------------------------------------------------------


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves globals only through the stand-in tables, within a budget.

    ``storages`` receives the persistent ids of torch files (without it they are refused);
    ``script`` admits the ``__torch__`` classes and helpers of TorchScript archives.
    """

    def __init__(self, file: BinaryIO, budget: Budget, what: str = "the file", storages: Optional[_Storages] = None,
                 table: Optional[Dict[Tuple[str, str], Any]] = None, script: bool = False):
        super().__init__(file)
        self.file, self.what = file, what
        self.ctx = _Context(budget, what, storages, script)
        self.table = _GLOBALS if table is None else table

    def load(self) -> Any:
        _scan(self.file, self.ctx.budget, self.what)
        return super().load()

    def find_class(self, module: str, name: str) -> Any:
        entry = self.table.get((module, name))
        if entry is None and self.ctx.storages is not None:
            entry = _STORAGE_TYPES.get((module, name))
        if entry is None and self.ctx.script:
            if module == "__torch__" or module.startswith("__torch__."):
                return _script_class(self.ctx, module, name)
            entry = _SCRIPT_GLOBALS.get((module, name))
        if entry is None:
            if self.table is _NO_GLOBALS:
                raise UnsafePickleError(f"refusing {module}.{name} inside {self.what}"[:300])
            raise UnsafePickleError(
                f"refusing to load {module}.{name}: the file asks to run code that is not part of a network "
                "(only NVIDIA's network data types are accepted)"[:400]
            )
        return entry.bind(self.ctx) if isinstance(entry, _Function) else entry

    def persistent_load(self, pid: Any) -> Any:
        if self.ctx.storages is None:
            raise UnsafePickleError("refusing a persistent id: this is not a plain network pickle (a torch.save file?)")
        return self.ctx.storages.record(pid)


def _resolve(obj: Any, memo: Dict[int, Any]) -> Any:
    """Replaces stand-ins by their data (numpy arrays, dicts), keeping shared references shared."""
    key = id(obj)
    if key in memo:
        return memo[key]
    if isinstance(obj, _ArrayStub):
        if obj.array is None:
            raise UnsafePickleError("malformed numpy array: no data")
        out = obj.array
    elif isinstance(obj, _TensorStub):
        out = obj.array()
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
    elif isinstance(obj, _ScriptRecord):
        if not hasattr(obj, "attributes"):
            raise UnsafePickleError(f"malformed TorchScript object {obj.class_name}: no attributes")
        out = memo[key] = ScriptObject(obj.class_name, {})
        out.attributes.update(_resolve(obj.attributes, memo))
    elif obj is None or isinstance(obj, (bool, int, float, complex, str, bytes, bytearray, np.ndarray, np.generic)):
        out = obj
    else:
        raise UnsafePickleError(f"malformed pickle: unexpected {type(obj).__name__} in the data")
    memo[key] = out
    return out


def _guarded(what: str, kind: str, read: Callable[[], Any]) -> Any:
    """Runs ``read``; damaged streams (pickle raises many exception types) become one-line UserErrors."""
    try:
        return read()
    except UserError:
        raise
    except RecursionError:
        raise UserError(f"{what} is not a {kind} (nested too deeply)") from None
    except Exception as e:
        if isinstance(e, EOFError) or "truncated" in str(e):
            raise UserError(f"{what} is truncated (the pickle ends early)") from None
        raise UserError(f"{what} is not a readable {kind} ({type(e).__name__}: {str(e)[:200]})") from None


def load(file: BinaryIO, what: Optional[str] = None, budget: Optional[Budget] = None) -> Any:
    """Unpickles ``file`` with :class:`RestrictedUnpickler` and returns plain data.

    Official objects come back as :class:`TFNetwork` / :class:`PersistentObject`, arrays and
    tensors as (read-only) numpy arrays, every dict as a plain dict. Raises
    :class:`UnsafePickleError` for anything that would run code, :class:`ResourceLimitError` for
    anything beyond the budget (by default :meth:`Budget.for_file` of what remains of ``file``),
    and :class:`UserError` for a damaged or non-pickle file.
    """
    what = what or getattr(file, "name", "the file")
    if budget is None:
        start = file.tell()
        budget = Budget.for_file(file.seek(0, 2) - start, what)
        file.seek(start)
    return _guarded(what, "pickle", lambda: _resolve(RestrictedUnpickler(file, budget, what).load(), {}))


# --- torch's legacy torch.save stream -------------------------------------------------------------


class _StreamStorages(_Storages):
    """Storages of a legacy stream: their elements follow the pickles, in the order of the key list."""

    def __init__(self, what: str):
        super().__init__(what, legacy=True)

    def fill(self, f: BinaryIO, keys: Any, budget: Budget, buffer: Optional[bytes]) -> None:
        if (not isinstance(keys, list) or not all(isinstance(k, str) for k in keys) or len(set(keys)) != len(keys)
                or set(keys) != set(self.roots)):
            raise UnsafePickleError(f"malformed torch file: {self.what}'s storage key list does not match its storages")
        for key in keys:
            record = self.roots[key]
            count = int.from_bytes(_read_exactly(f, 8, self.what), "little", signed=True)
            if count != record.numel:
                raise UserError(f"{self.what} is damaged: storage {key!r} holds {count} elements, not the "
                                f"{record.numel} its record declares")
            nbytes = count * record.type.dtype.itemsize
            if buffer is not None:  # a nested stream: the bytes are already in memory (and were charged)
                at = f.tell()
                if at + nbytes > len(buffer):
                    raise UserError(f"{self.what} is truncated (storage {key!r} ends early)")
                raw = memoryview(buffer)[at:at + nbytes]
                f.seek(nbytes, 1)
            else:
                budget.charge(nbytes, f"storage {key!r}")
                raw = _read_exactly(f, nbytes, self.what)
            record.set_elements(raw, budget)


def _read_exactly(f: BinaryIO, n: int, what: str) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise UserError(f"{what} is truncated (its storage data ends early)")
    return data


def _read_legacy(f: BinaryIO, budget: Budget, what: str, table: Dict[Tuple[str, str], Any],
                 buffer: Optional[bytes] = None) -> Any:
    """torch's legacy ``torch.save`` stream: pickled magic number, protocol version and system info;
    the pickled object, whose persistent ids ``('storage', type, key, location, numel, view)`` name
    the storages; the pickled list of storage keys; then per key an int64 element count and the
    raw little-endian elements. Returns the object with its storages filled (not yet resolved)."""

    def plain() -> Any:
        return _resolve(RestrictedUnpickler(f, budget, what, table=_NO_GLOBALS).load(), {})

    if plain() != TORCH_LEGACY_MAGIC or plain() != _TORCH_LEGACY_PROTOCOL:
        raise UserError(f"{what} has a bad magic number or protocol version (not a torch.save stream)")
    sys_info = plain()
    if not isinstance(sys_info, dict) or sys_info.get("little_endian") is not True:
        raise UserError(f"{what} is not supported: it was not written on a little-endian machine")
    storages = _StreamStorages(what)
    obj = RestrictedUnpickler(f, budget, what, storages=storages, table=table).load()
    storages.fill(f, plain(), budget, buffer)
    return obj


# --- torch files ----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class TorchFile:
    """What :func:`load_torch` read: the format, the tensors by dotted name, the file's sha256."""

    format: str  # "torch-legacy" | "torch-zip" | "torchscript"
    tensors: Dict[str, np.ndarray]  # flat state dict, dotted names as torch's state_dict() gives
    sha256: str  # of the whole file


def load_torch(path: str) -> TorchFile:
    """Reads a ``torch.save`` file (legacy stream or zip archive) or a ``torch.jit.save`` archive.

    Nothing in the file is executed and torch is not imported. A saved dict (a state_dict)
    gives its tensors by key, nested dicts and lists joined with dots; a TorchScript archive gives
    its modules' parameters and buffers by their path in the module tree (``layers.conv1.weight``)
    and the constants of its code as ``CONSTANTS.c<i>``. Raises a one-line :class:`UserError`
    (:class:`UnsafePickleError`, :class:`ResourceLimitError`) for anything else.
    """
    if not os.path.isfile(path):
        raise UserError(f"no such file: {path}")
    budget = Budget.for_file(os.path.getsize(path), path)
    with open(path, "rb") as f:
        head = f.read(len(ZIP_MAGIC))
        f.seek(0)
        if head == ZIP_MAGIC:
            fmt, objects = _read_torch_zip(f, budget, path)
        elif head.startswith(b"\x80"):
            fmt = "torch-legacy"
            objects = {"": _guarded(path, "torch file", lambda: _read_legacy_file(f, budget, path))}
        else:
            raise UserError(f"{path} is not a torch file (neither a torch.save zip archive nor torch's legacy stream)")
    tensors: Dict[str, np.ndarray] = {}
    for prefix, obj in objects.items():
        _flatten(obj, prefix, tensors, budget, path, ())
    return TorchFile(fmt, tensors, sha256_file(path))


def _read_legacy_file(f: BinaryIO, budget: Budget, what: str) -> Any:
    first = RestrictedUnpickler(f, budget, what, table=_NO_GLOBALS)
    try:
        magic = _resolve(first.load(), {})
    except UnsafePickleError:
        magic = None
    if magic != TORCH_LEGACY_MAGIC:
        raise UserError(f"{what} is a pickle but not a torch.save file (an official network pickle? "
                        "see runners.convert_official)")
    f.seek(0)
    return _resolve(_read_legacy(f, budget, what, _GLOBALS), {})


def _read_torch_zip(f: BinaryIO, budget: Budget, what: str) -> Tuple[str, Dict[str, Any]]:
    archive = TorchArchive(f, budget, what)
    names = set(archive.names())
    if "data.pkl" not in names:
        if "model.json" in names:
            raise UserError(f"{what} is a TorchScript archive of the format before torch 1.4 (model.json); "
                            "re-save it with torch.jit.save in a newer torch")
        raise UserError(f"{what} is a zip archive without data.pkl: not a torch.save or TorchScript file")
    if "byteorder" in names and archive.read("byteorder").strip() != b"little":
        raise UserError(f"{what} is not supported: its tensors are not little-endian")
    if "version" in names and not archive.read("version").strip().isdigit():
        raise UserError(f"{what} is damaged: its version record is not a number")
    script = "constants.pkl" in names or any(n.startswith("code/") for n in names)

    def unpickle(member: str, folder: str) -> Any:
        data = io.BytesIO(archive.read(member))
        storages = _ArchiveStorages(archive, folder, budget)
        return _guarded(what, "torch file", lambda: _resolve(
            RestrictedUnpickler(data, budget, f"{what} ({member})", storages=storages, script=script).load(), {}))

    objects = {"": unpickle("data.pkl", "data")}
    if script and "constants.pkl" in names:
        constants = unpickle("constants.pkl", "constants")
        if not isinstance(constants, tuple):
            raise UserError(f"{what} is damaged: its constants.pkl is not a tuple")
        objects["CONSTANTS"] = {f"c{i}": c for i, c in enumerate(constants)}
    return ("torchscript" if script else "torch-zip"), objects


def _flatten(obj: Any, name: str, out: Dict[str, np.ndarray], budget: Budget, what: str, path: tuple) -> None:
    """Tensors of ``obj`` by dotted name: dict keys, list indices, TorchScript attribute names."""
    budget.charge(OPCODE_BYTES + len(name), "naming its tensors")  # bounds the walk over shared sub-trees
    if isinstance(obj, np.ndarray):
        if name in out:
            raise UserError(f"{what} holds two tensors named {name!r}")
        out[name] = obj
        return
    if isinstance(obj, ScriptObject):
        items = obj.attributes.items()
    elif isinstance(obj, dict):
        items = obj.items()
    elif isinstance(obj, (list, tuple)):
        items = enumerate(obj)
    else:
        return  # numbers, strings, None: not tensors
    if any(obj is p for p in path):
        raise UserError(f"{what} is malformed: its object tree contains itself (at {name!r})")
    for key, value in items:
        if not isinstance(key, (str, int)) or isinstance(key, bool):
            raise UserError(f"{what} is malformed: a key of type {type(key).__name__} at {name!r}")
        _flatten(value, f"{name}.{key}" if name else str(key), out, budget, what, path + (obj,))

