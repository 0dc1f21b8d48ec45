"""Writers of torch's file formats in pure Python, without torch, for the reader's tests.

* :func:`legacy_bytes`: ``torch.save(obj, f, _use_new_zipfile_serialization=False)``: pickled
  magic number, protocol 1001 and system info (protocol 2), the object with persistent ids
  ``('storage', torch.<Type>Storage, key, 'cpu', numel, None)``, the sorted storage keys, then
  per key an int64 element count and the raw elements.
* :func:`zip_bytes`: ``torch.save`` since torch 1.6: ``<archive>/data.pkl`` with persistent ids
  ``('storage', torch.<Type>Storage, key, 'cpu', numel)``, ``data/<key>`` members holding the raw
  elements, ``.format_version``, ``.storage_alignment``, ``byteorder``, ``version``,
  ``.data/serialization_id``, all stored uncompressed.
* :func:`torchscript_bytes`: ``torch.jit.save``: ``data.pkl`` whose modules are
  ``__torch__.<Class>`` objects (NEWOBJ with no arguments, then BUILD with the attribute dict),
  ``constants.pkl`` (a tuple, storages in ``constants/``), and ``code/__torch__.py`` declaring the
  classes (deflated), which ``torch.jit.load`` compiles and our reader never opens.

Objects are built with :mod:`official_pickles` (``Reduce``, ``NewObj``, ``Global``), tensors with
:func:`tensor` over :class:`Storage` objects, so tests can write views, shared storages and
hostile records as easily as plain state dicts. ``make_torch_fixtures.py`` checks these layouts
against torch itself.
"""

from __future__ import annotations

import collections
import io
import zipfile
from typing import Any, Dict, Iterable, List, Optional, Sequence

import numpy as np
import official_pickles as op

ORDERED_DICT = op.Global("collections", "OrderedDict")
STORAGE_TYPES = {np.dtype(k): v for k, v in {"float32": "FloatStorage", "float64": "DoubleStorage", "float16": "HalfStorage",
                                             "int64": "LongStorage", "int32": "IntStorage", "int16": "ShortStorage",
                                             "int8": "CharStorage", "uint8": "ByteStorage", "bool": "BoolStorage"}.items()}


class Storage:
    """A torch storage: flat elements (``type_name`` overrides the storage type, e.g. BFloat16Storage
    over uint16 bits). ``numel``, ``data``, ``key`` and ``member`` (the archive member's name in
    ``data/``) override what the record declares and what is written, for hostile files."""

    def __init__(self, flat: np.ndarray, type_name: Optional[str] = None, numel: Optional[int] = None,
                 data: Optional[bytes] = None, key: Optional[str] = None, member: Optional[str] = None):
        self.flat = np.ascontiguousarray(flat).reshape(-1)
        self.type_name = type_name or STORAGE_TYPES[self.flat.dtype]
        self.numel = self.flat.size if numel is None else numel
        self.data = self.flat.tobytes() if data is None else data
        self.key, self.member = key, member


def tensor(storage: Storage, offset: int = 0, size: Optional[Sequence[int]] = None, stride: Optional[Sequence[int]] = None,
           requires_grad: bool = False, parameter: bool = False) -> op.Reduce:
    """``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, OrderedDict())``."""
    size = (storage.flat.size,) if size is None else tuple(size)
    if stride is None:
        stride = tuple(int(np.prod(size[i + 1:])) for i in range(len(size)))
    t = op.Reduce(op.REBUILD_TENSOR, (storage, offset, tuple(size), tuple(stride), requires_grad, op.Reduce(ORDERED_DICT, ())))
    return op.Reduce(op.REBUILD_PARAMETER, (t, requires_grad, op.Reduce(ORDERED_DICT, ()))) if parameter else t


def array_tensor(a: np.ndarray, **kwargs) -> op.Reduce:
    """A contiguous tensor over its own storage."""
    a = np.asarray(a)
    return tensor(Storage(a), size=a.shape, **kwargs)


def state_dict(tensors: Dict[str, Any]) -> op.Reduce:
    """An ``OrderedDict`` with the ``_metadata`` attribute ``Module.state_dict()`` attaches."""
    modules = sorted({k.rpartition(".")[0] for k in tensors})
    metadata = op.Reduce(ORDERED_DICT, (), dictitems={m: {"version": 1} for m in modules})
    return op.Reduce(ORDERED_DICT, (), state={"_metadata": metadata}, dictitems=dict(tensors))


class _Keys:
    """Storage keys in the order the pickler meets the storages, as torch assigns them."""

    def __init__(self, legacy: bool):
        self.legacy, self.storages = legacy, {}

    def __call__(self, obj: Any) -> Optional[tuple]:
        if not isinstance(obj, Storage):
            return None
        if id(obj) not in self.storages:
            obj_key = obj.key or (str(140000000000000 + 64 * len(self.storages)) if self.legacy else str(len(self.storages)))
            self.storages[id(obj)] = (obj_key, obj)
        key = self.storages[id(obj)][0]
        pid = ("storage", op.Global("torch", obj.type_name), key, "cpu", obj.numel)
        return pid + (None,) if self.legacy else pid

    def items(self) -> List[tuple]:
        return list(self.storages.values())


def legacy_bytes(obj: Any, protocol: int = 2, keys_override: Optional[list] = None) -> bytes:
    keys = _Keys(legacy=True)
    sys_info = dict(protocol_version=op.TORCH_PROTOCOL, little_endian=True, type_sizes=dict(short=2, int=4, long=4))
    out = op.dumps(op.TORCH_MAGIC, 2) + op.dumps(op.TORCH_PROTOCOL, 2) + op.dumps(sys_info, 2)
    out += op.dumps(obj, protocol, persistent_id=keys)
    ordered = sorted(keys.items(), key=lambda item: item[0])
    out += op.dumps([k for k, _ in ordered] if keys_override is None else keys_override, 2)
    for _, storage in ordered:
        out += np.int64(storage.numel).tobytes() + storage.data
    return out


_TOP_MEMBERS = {".format_version": b"1", ".storage_alignment": b"64", "byteorder": b"little"}


def _zip(members: Iterable[tuple]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data, compress in members:
            z.writestr(zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0)), data,
                       compress_type=zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED)
    return buf.getvalue()


def zip_bytes(obj: Any, archive: str = "archive", extra: Sequence[tuple] = ()) -> bytes:
    """``extra``: more (name, bytes) members under the archive folder, e.g. hostile ones."""
    keys = _Keys(legacy=False)
    data_pkl = op.dumps(obj, 2, persistent_id=keys)
    members = [(f"{archive}/data.pkl", data_pkl, False)]
    members += [(f"{archive}/{name}", data, False) for name, data in _TOP_MEMBERS.items()]
    members += [(f"{archive}/data/{s.member or key}", s.data, False) for key, s in keys.items()]
    members += [(f"{archive}/version", b"3\n", False), (f"{archive}/.data/serialization_id", b"0" * 40, False)]
    members += [(f"{archive}/{name}", data, False) for name, data in extra]
    return _zip(members)


# --- TorchScript ----------------------------------------------------------------------------------


class Module:
    """A scripted module: its class (``__torch__.<name>``), tensors and submodules by attribute name."""

    def __init__(self, name: str, tensors: Optional[Dict[str, Any]] = None, children: Optional[Dict[str, "Module"]] = None,
                 attrs: Optional[Dict[str, Any]] = None):
        self.name, self.tensors, self.children = name, dict(tensors or {}), dict(children or {})
        self.attrs = dict(attrs or {})

    def record(self) -> op.NewObj:
        state = {name: (array_tensor(t) if isinstance(t, np.ndarray) else t) for name, t in self.tensors.items()}
        state.update({"training": False, "_is_full_backward_hook": None})
        state.update({name: child.record() for name, child in self.children.items()})
        state.update(self.attrs)
        return op.NewObj(op.Global("__torch__", self.name), (), state=state)

    def classes(self) -> Dict[str, "Module"]:
        out = {self.name: self}
        for child in self.children.values():
            out.update(child.classes())
        return out


def _declare(name: str, value: Any) -> str:
    return f"  {name} : {value}\n" if name.isidentifier() else f'  __annotations__["{name}"] = {value}\n'


def script_source(root: Module) -> str:
    """``code/__torch__.py``: each class with its attribute types and an identity ``forward``."""
    out = []
    for name, m in root.classes().items():
        src = f"class {name}(Module):\n"
        src += "  __parameters__ = [" + "".join(f'"{t}", ' for t in m.tensors) + "]\n  __buffers__ = []\n"
        src += "".join(_declare(t, "Tensor") for t in m.tensors)
        src += "  training : bool\n  _is_full_backward_hook : Optional[bool]\n"
        src += "".join(_declare(c, f"__torch__.{child.name}") for c, child in m.children.items())
        src += f"  def forward(self: __torch__.{name},\n    x: Tensor) -> Tensor:\n    return x\n"
        out.append(src)
    return "".join(out)


def torchscript_bytes(root: Module, archive: str = "archive", constants: Sequence[np.ndarray] = (),
                      data_pkl: Optional[bytes] = None, extra: Sequence[tuple] = ()) -> bytes:
    keys = _Keys(legacy=False)
    data_pkl = op.dumps(root.record(), 2, persistent_id=keys) if data_pkl is None else data_pkl
    const_keys = _Keys(legacy=False)
    constants_pkl = op.dumps(tuple(array_tensor(c) for c in constants), 2, persistent_id=const_keys)
    members = [(f"{archive}/data/{s.member or key}", s.data, False) for key, s in keys.items()]
    members += [(f"{archive}/data.pkl", data_pkl, False),
                (f"{archive}/code/__torch__.py", script_source(root).encode(), True),
                (f"{archive}/constants.pkl", constants_pkl, False)]
    members += [(f"{archive}/constants/{key}", s.data, False) for key, s in const_keys.items()]
    members += [(f"{archive}/version", b"3\n", False), (f"{archive}/byteorder", b"little", False),
                (f"{archive}/.data/serialization_id", b"0" * 40, False)]
    members += [(f"{archive}/{name}", data, False) for name, data in extra]
    return _zip(members)


def example_tensors(seed: int = 0) -> Dict[str, np.ndarray]:
    """A small state dict of every dtype family the reader converts."""
    rng = np.random.RandomState(seed)
    return collections.OrderedDict([
        ("conv.weight", rng.randn(4, 3, 3, 3).astype(np.float32)),
        ("conv.bias", rng.randn(4).astype(np.float32)),
        ("bn.running_var", rng.rand(4).astype(np.float64)),
        ("bn.num_batches_tracked", np.array(7, np.int64)),
        ("fc.weight", rng.randn(2, 4).astype(np.float16)),
        ("mask", np.array([True, False, True])),
    ])
