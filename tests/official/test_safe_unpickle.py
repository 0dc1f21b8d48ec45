"""The restricted unpickler: refuses anything that would run code, rebuilds numpy/torch data exactly."""

import collections
import io
import os
import pickle
import subprocess
import sys

import numpy as np
import official_pickles as op
import pytest

from tf_stylegan2 import official
from tf_stylegan2.fileio import UserError
from tf_stylegan2.official import safe_unpickle
from tf_stylegan2.official.safe_unpickle import PersistentObject, TFNetwork, UnsafePickleError


def load_bytes(data: bytes):
    return safe_unpickle.load(io.BytesIO(data), "test pickle")


class _Reduce:
    """Pickles as ``func(*args)``, the way an attacker's object would."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def attacks(marker: str):
    """Pickles that create ``marker`` when loaded by Python's pickle."""
    write = f"open({marker!r}, 'w').write('pwned')"
    return {
        "os.system": pickle.dumps(_Reduce(os.system, f"touch {marker}")),
        "builtins.exec": pickle.dumps(_Reduce(exec, write)),
        "builtins.eval": pickle.dumps(_Reduce(eval, write), protocol=2),
        "subprocess.Popen": pickle.dumps(_Reduce(subprocess.Popen, ["touch", marker])),
        # getattr(builtins, 'exec')(...): a two-step attack that never names exec directly
        "builtins.getattr": op.dumps(
            op.Reduce(op.Reduce(op.Global("builtins", "getattr"), (op.Reduce(op.Global("importlib", "import_module"), ("builtins",)), "exec")), (write,)),
            4,
        ),
    }


@pytest.mark.parametrize("name", ["os.system", "builtins.exec", "builtins.eval", "subprocess.Popen", "builtins.getattr"])
def test_code_execution_is_refused(tmp_path, name):
    marker = str(tmp_path / "pwned")
    data = attacks(marker)[name]
    with pytest.raises(UnsafePickleError, match=r"refusing to load .*: the file asks to run code"):
        load_bytes(data)
    assert not os.path.exists(marker)


def test_plain_pickle_would_run_the_payload(tmp_path):
    """Guards the test above: the crafted stream does write the file when pickle runs it."""
    marker = str(tmp_path / "pwned")
    pickle.loads(attacks(marker)["builtins.exec"])
    assert os.path.exists(marker)


def test_refused_globals_are_never_imported():
    assert "this" not in sys.modules  # importing 'this' prints the Zen of Python: a visible side effect
    with pytest.raises(UnsafePickleError, match="refusing to load this.s"):
        load_bytes(op.dumps(op.Global("this", "s"), 4))
    assert "this" not in sys.modules


def test_payload_nested_in_a_valid_network_is_refused(tmp_path):
    """A payload hidden in a module attribute of an otherwise valid ada pickle."""
    marker = str(tmp_path / "pwned")
    g = dict(z_dim=8, c_dim=0, w_dim=8, img_resolution=8, img_channels=3,
             synthesis_kwargs=dict(channel_base=64, channel_max=16), mapping_kwargs=dict(num_layers=1))
    sd = op.ada_generator_state(g, np.random.RandomState(0))
    evil = op.Reduce(op.Global("posix", "system"), (f"touch {marker}",))
    module = op.persistent_module("Generator", {}, {}, attrs={"hook": evil}, init_kwargs=g)
    with pytest.raises(UnsafePickleError, match="refusing to load posix.system"):
        load_bytes(op.dumps({"G": module, "D": module, "G_ema": op.module_tree("Generator", sd, g)}, 4))
    assert not os.path.exists(marker)


def test_payload_inside_a_torch_storage_is_refused(tmp_path):
    marker = str(tmp_path / "pwned")
    inner = op.dumps(op.Reduce(op.Global("posix", "system"), (f"touch {marker}",)), 2)
    with pytest.raises(UnsafePickleError, match="refusing posix.system inside a pickled torch storage"):
        load_bytes(op.dumps(op.Reduce(op.LOAD_FROM_BYTES, (inner,)), 4))
    # torch's legacy format can also embed whole modules with their source: refused too
    legacy_module = op.dumps(op.TORCH_MAGIC, 2) + op.dumps(op.TORCH_PROTOCOL, 2) + op.dumps({"little_endian": True}, 2)
    mark = object()
    legacy_module += op.dumps([mark], 2, persistent_id=lambda o: ("module", "Net", "net.py", "import os") if o is mark else None)
    with pytest.raises(UnsafePickleError, match="torch.save record of kind 'module'"):
        load_bytes(op.dumps(op.Reduce(op.LOAD_FROM_BYTES, (legacy_module,)), 4))
    assert not os.path.exists(marker)


def test_embedded_source_is_never_executed(tmp_path):
    """Both formats embed source code that NVIDIA's loaders exec; ours keeps it as text."""
    marker = str(tmp_path / "pwned")
    source = f"open({marker!r}, 'w').write('pwned')\n"
    g = dict(z_dim=8, c_dim=0, w_dim=8, img_resolution=8, img_channels=3,
             synthesis_kwargs=dict(channel_base=64, channel_max=16), mapping_kwargs=dict(num_layers=1))
    d = dict(c_dim=0, img_resolution=8, img_channels=3, channel_base=64, channel_max=16)
    data, _ = op.ada_pickle(g, d, source=source)
    path = tmp_path / "ada.pkl"
    path.write_bytes(data)
    nets = official.read(str(path))
    assert set(nets.networks) == {"G", "D", "G_ema"}
    # A persistence-style object whose source is the payload and whose state is junk: a clear error.
    junk = op.dumps({k: op.Reduce(op.PERSISTENT, (dict(type="class", version=6, module_src=source, class_name="Generator",
                                                      state={"x": 1}),)) for k in ("G", "D", "G_ema")}, 4)
    path.write_bytes(junk)
    with pytest.raises(UserError, match="does not record its constructor arguments"):
        official.read(str(path))
    t, _ = op.tf1_pickle(dict(resolution=8, fmap_base=32, fmap_max=16, latent_size=8, dlatent_size=8, mapping_layers=1,
                              mapping_fmaps=8), dict(resolution=8, fmap_base=32, fmap_max=16), source=source)
    path.write_bytes(t)
    assert official.read(str(path)).format == "StyleGAN2 TF1"
    assert not os.path.exists(marker)


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_numpy_arrays_and_scalars_round_trip(protocol):
    """numpy's own pickling (numpy._core names, protocol-2 latin-1 bytes, protocol-5 buffers)."""
    arrays = [
        np.arange(12, dtype=np.float32).reshape(3, 4),
        np.asfortranarray(np.random.randn(3, 5)),
        np.array([1, -2, 3], np.int64),
        np.array([True, False]),
        np.random.randn(2, 2).astype(np.float16),
        np.zeros((0, 3), np.uint8),
        np.array(2.5, np.float32),
    ]
    data = {"arrays": arrays, "scalar": np.float64(0.125), "n": np.int32(-7), "od": collections.OrderedDict(a=1),
            "set": {1, 2}, "fs": frozenset([3]), "t": (b"raw", "text", None, 1.5)}
    out = load_bytes(pickle.dumps(data, protocol=protocol))
    for a, b in zip(arrays, out["arrays"]):
        assert a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)
    assert out["scalar"] == 0.125 and out["scalar"].dtype == np.float64 and out["n"] == -7
    assert out["od"] == {"a": 1} and out["set"] == {1, 2} and out["fs"] == frozenset([3])
    assert out["t"] == (b"raw", "text", None, 1.5)


def test_numpy_1x_stream_names():
    """Files from numpy 1.x name numpy.core.multiarray; the writer produces exactly that."""
    a = np.random.randn(2, 3).astype(np.float32)
    data = op.dumps([op.np_array(a), op.np_scalar(np.float32(3.0))], 3)
    assert b"numpy.core.multiarray\n_reconstruct" in data
    out = load_bytes(data)
    assert np.array_equal(out[0], a) and out[1] == 3.0


@pytest.mark.parametrize("value", [np.array([object()], dtype=object), np.zeros(2, dtype=[("a", "f4"), ("b", "i4")])])
def test_object_and_structured_arrays_are_refused(value):
    with pytest.raises(UnsafePickleError, match="refusing"):
        load_bytes(pickle.dumps(value, protocol=3))


def test_torch_tensors_rebuild_views_exactly():
    storage = np.arange(24, dtype=np.float32)
    stor = op.Reduce(op.LOAD_FROM_BYTES, (op.torch_storage_bytes(storage),))
    views = [
        (0, (4, 6), (6, 1)),  # contiguous
        (2, (3, 4), (1, 5)),  # offset, transposed strides
        (5, (2, 2, 3), (10, 3, 1)),
        (7, (), ()),  # 0-d
        (0, (3, 0), (1, 1)),  # empty
    ]
    tensors = [op.Reduce(op.REBUILD_TENSOR, (stor, o, s, st, False, collections.OrderedDict())) for o, s, st in views]
    out = load_bytes(op.dumps([op.Reduce(op.REBUILD_PARAMETER, (t, False, collections.OrderedDict())) for t in tensors], 4))
    for (o, s, st), got in zip(views, out):
        expect = np.lib.stride_tricks.as_strided(storage[o:], s, [x * 4 for x in st]) if s != (3, 0) else np.zeros(s)
        assert got.shape == s and np.array_equal(got, expect)


def test_half_and_bfloat16_storages():
    half = np.random.randn(5).astype(np.float16)
    out = load_bytes(op.dumps(op.torch_tensor(half, parameter=False), 4))
    assert out.dtype == np.float16 and np.array_equal(out, half)
    f = np.array([1.0, -2.5, 3.140625], np.float32)  # exactly representable in bfloat16
    stream = op.torch_storage_bytes((f.view(np.uint32) >> 16).astype(np.uint16), storage_type="BFloat16Storage")
    out = load_bytes(op.dumps(op.Reduce(op.REBUILD_TENSOR, (op.Reduce(op.LOAD_FROM_BYTES, (stream,)), 0, (3,), (1,), False,
                                                             collections.OrderedDict())), 4))
    assert out.dtype == np.float32 and np.array_equal(out, f)


def test_tensor_views_outside_their_storage_are_refused():
    stor = op.Reduce(op.LOAD_FROM_BYTES, (op.torch_storage_bytes(np.zeros(6, np.float32)),))
    for offset, size, stride in [(0, (7,), (1,)), (4, (2, 2), (2, 1)), (0, (2, 3), (4, 1))]:
        data = op.dumps(op.Reduce(op.REBUILD_TENSOR, (stor, offset, size, stride, False, collections.OrderedDict())), 4)
        with pytest.raises(UnsafePickleError, match="past the end of its storage"):
            load_bytes(data)


def test_truncated_storage_and_pickle_are_user_errors():
    stream = op.torch_storage_bytes(np.ones(8, np.float32))
    with pytest.raises(UserError, match="truncated"):
        load_bytes(op.dumps(op.Reduce(op.LOAD_FROM_BYTES, (stream[:-4],)), 4))
    data = pickle.dumps({"a": np.ones(100)}, protocol=4)
    with pytest.raises(UserError, match="truncated"):
        load_bytes(data[: len(data) // 2])


def test_official_objects_come_back_as_data():
    net = op.tf_network("G", "G_main", {"resolution": 8}, {"w": np.ones((2, 2), np.float32), "s": np.zeros((), np.float32)})
    obj = op.Reduce(op.PERSISTENT, (dict(type="class", version=6, module_src="src", class_name="Generator",
                                         state={"_init_kwargs": op.easydict({"a": {"b": 1}})}),))
    tf_net, persistent = load_bytes(op.dumps([net, obj], 4))
    assert isinstance(tf_net, TFNetwork) and tf_net.build_func_name == "G_main" and tf_net.static_kwargs == {"resolution": 8}
    assert [n for n, _ in tf_net.variables] == ["w", "s"] and np.array_equal(tf_net.variables[0][1], np.ones((2, 2)))
    assert isinstance(persistent, PersistentObject) and persistent.class_name == "Generator"
    assert type(persistent.state["_init_kwargs"]["a"]) is dict and persistent.state["_init_kwargs"] == {"a": {"b": 1}}


@pytest.mark.parametrize("key", sorted(safe_unpickle._GLOBALS), ids=".".join)
def test_stand_ins_cannot_be_modified_by_a_stream(key):
    """BUILD with a (dict, slots) state on a stand-in would otherwise setattr on it."""
    module, name = key
    stream = (b"\x80\x02c" + f"{module}\n{name}\n".encode() + b"N}X\x05\x00\x00\x00pwnedK\x01s\x86b.")
    before = dict(getattr(safe_unpickle._GLOBALS[key], "__dict__", {}))
    with pytest.raises(UserError):
        load_bytes(stream)
    assert not hasattr(safe_unpickle._GLOBALS[key], "pwned")
    assert dict(getattr(safe_unpickle._GLOBALS[key], "__dict__", {})) == before
