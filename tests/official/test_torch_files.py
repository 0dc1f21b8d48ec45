"""load_torch: torch's three file formats read exactly, hostile archives refused with one line."""

import hashlib
import io
import os
import pickle
import re
import struct
import warnings
import zipfile
import zlib

import numpy as np
import official_pickles as op
import pytest
import torch_writer as tw

from tf_stylegan2.fileio import UserError
from tf_stylegan2.official import budget as budget_module
from tf_stylegan2.official.safe_unpickle import ResourceLimitError, UnsafePickleError, load_torch

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")


def expected_state():
    """The numpy twin of make_torch_fixtures.fixture_state (what torch wrote into the fixtures)."""
    base = np.arange(10, dtype=np.float32) / 4 - 1
    return {
        "conv.weight": np.arange(24, dtype=np.float32).reshape(2, 3, 2, 2) / 8 - 1,
        "shared.base": base,
        "shared.slice": base[3:5],
        "shared.transposed": base[:6].reshape(2, 3).T,
        "expanded": np.broadcast_to(np.arange(3, dtype=np.float32) + 1, (4, 3)),
        "half": np.array([0.5, -1.5, 2.0], np.float16),
        "bf16": np.array([1.0, -2.5, 3.140625], np.float32),  # widened to float32
        "steps": np.array(7, np.int64),
        "mask": np.array([True, False, True]),
        "bytes": np.arange(4, dtype=np.uint8),
    }


def assert_tensors(got, expected):
    assert sorted(got) == sorted(expected)
    for name, value in expected.items():
        assert got[name].dtype == value.dtype and got[name].shape == value.shape, name
        np.testing.assert_array_equal(got[name], value, err_msg=name)


@pytest.mark.parametrize("name, fmt", [("torch_legacy.pth", "torch-legacy"), ("torch_zip.pth", "torch-zip")])
def test_reads_state_dicts_torch_wrote(name, fmt):
    """Files torch.save wrote (make_torch_fixtures.py): views, shared storages, stride 0, every dtype family."""
    path = os.path.join(FIXTURES, name)
    got = load_torch(path)
    assert got.format == fmt
    assert_tensors(got.tensors, expected_state())
    with open(path, "rb") as f:
        assert got.sha256 == hashlib.sha256(f.read()).hexdigest()


def test_reads_a_torchscript_archive_torch_wrote():
    """torch.jit.save of a scripted module tree (Sequential of two layers, a Linear, a traced child)."""
    got = load_torch(os.path.join(FIXTURES, "torchscript.pt"))
    assert got.format == "torchscript"
    layer = lambda n, start: np.arange(n * 3, dtype=np.float32).reshape(n, 3) / 16 + start  # noqa: E731
    assert_tensors(got.tensors, {
        "layers.0.weight": layer(2, 0.5), "layers.0.mean": np.full(2, 0.5, np.float32),
        "layers.1.weight": layer(2, -1.0), "layers.1.mean": np.full(2, -1.0, np.float32),
        "output.weight": np.float32([[1, 2], [3, 4]]), "output.bias": np.float32([-1, 1]),
        "CONSTANTS.c0": np.float32([0.25, -0.5]),  # the traced child's tensor, a constant of its code
    })


def writer_tensors():
    """Tensors for the pure-Python writer with what they must read back as."""
    arrays = dict(tw.example_tensors())
    flat = np.arange(12, dtype=np.float32)
    shared = tw.Storage(flat)
    bits = (np.float32([1.0, -2.5]).view(np.uint32) >> 16).astype(np.uint16)
    tensors = {k: tw.array_tensor(v) for k, v in arrays.items()}
    tensors.update({
        "view.t": tw.tensor(shared, 2, (3, 2), (1, 3)), "view.full": tw.tensor(shared, 0, (12,), (1,)),
        "view.zero": tw.tensor(shared, 5, (2, 3), (0, 1)), "param": tw.tensor(shared, 1, (2,), (1,), parameter=True),
        "bf16": tw.tensor(tw.Storage(bits, "BFloat16Storage"), 0, (2,), (1,)), "empty": tw.tensor(shared, 0, (0, 3), (3, 1)),
    })
    arrays.update({
        "view.t": flat[2:8].reshape(2, 3).T, "view.full": flat, "view.zero": np.broadcast_to(flat[5:8], (2, 3)),
        "param": flat[1:3], "bf16": np.float32([1.0, -2.5]), "empty": np.zeros((0, 3), np.float32),
    })
    return tensors, arrays


@pytest.mark.parametrize("fmt", ["torch-legacy", "torch-zip"])
def test_writer_state_dicts_round_trip(tmp_path, fmt):
    tensors, expected = writer_tensors()
    data = (tw.legacy_bytes if fmt == "torch-legacy" else tw.zip_bytes)(tw.state_dict(tensors))
    (tmp_path / "sd.pth").write_bytes(data)
    got = load_torch(str(tmp_path / "sd.pth"))
    assert got.format == fmt and got.sha256 == hashlib.sha256(data).hexdigest()
    assert_tensors(got.tensors, expected)


def test_nested_containers_get_dotted_names(tmp_path):
    a, b = np.float32([1, 2]), np.int32([3])
    obj = {"model": tw.state_dict({"fc.weight": tw.array_tensor(a)}), "extra": [tw.array_tensor(b), 5], "epoch": 3}
    (tmp_path / "ckpt.pth").write_bytes(tw.zip_bytes(obj))
    assert_tensors(load_torch(str(tmp_path / "ckpt.pth")).tensors, {"model.fc.weight": a, "extra.0": b})


def test_torchscript_module_tree_names(tmp_path):
    w, b = np.float32([[1, 2]]), np.float32([0.5])
    root = tw.Module("Net", {"scale": np.float32([2.0])}, {
        "layers": tw.Module("Seq", children={"0": tw.Module("Conv", {"weight": w}), "1": tw.Module("Act")}),
        "fc": tw.Module("Linear", {"weight": w, "bias": b}, attrs={"in_features": 2, "kind": "x"})})
    (tmp_path / "net.pt").write_bytes(tw.torchscript_bytes(root, constants=[np.float32([9.0])]))
    got = load_torch(str(tmp_path / "net.pt"))
    assert got.format == "torchscript"
    assert_tensors(got.tensors, {"scale": np.float32([2.0]), "layers.0.weight": w, "fc.weight": w, "fc.bias": b,
                                 "CONSTANTS.c0": np.float32([9.0])})


# --- hostile and broken files ---------------------------------------------------------------------


def refused(path, message, error=UserError):
    with pytest.raises(error, match=message) as e:
        load_torch(str(path))
    assert "\n" not in str(e.value)
    return str(e.value)


def payload(marker):
    return op.Reduce(op.Global("posix", "system"), (f"touch {marker}",))


@pytest.mark.parametrize("fmt", ["legacy", "zip", "torchscript"])
def test_reduce_payloads_are_refused(tmp_path, fmt):
    marker = tmp_path / "pwned"
    sd = tw.state_dict({"w": tw.array_tensor(np.ones(2, np.float32)), "evil": payload(marker)})
    if fmt == "legacy":
        data = tw.legacy_bytes(sd)
    elif fmt == "zip":
        data = tw.zip_bytes(sd)
    else:
        data = tw.torchscript_bytes(tw.Module("Net", attrs={"hook": payload(marker)}))
    (tmp_path / "f.pt").write_bytes(data)
    refused(tmp_path / "f.pt", "refusing to load posix.system: the file asks to run code", UnsafePickleError)
    assert not marker.exists()


def script_archive(tmp_path, record):
    """A TorchScript archive whose data.pkl holds ``record``."""
    path = tmp_path / "net.pt"
    path.write_bytes(tw.torchscript_bytes(tw.Module("Net"), data_pkl=op.dumps(record, 2)))
    return path


def test_torchscript_classes_that_would_run_code_are_refused(tmp_path):
    net = op.Global("__torch__", "Net")
    # A class with __getstate__/__setstate__: its BUILD state is not the attribute dict.
    refused(script_archive(tmp_path, op.NewObj(net, (), state=(op.Reduce(op.Global("builtins", "len"), ()), True))),
            "refusing to load builtins.len", UnsafePickleError)
    refused(script_archive(tmp_path, op.NewObj(net, (), state=(1, True))), "its own __setstate__ code", UnsafePickleError)
    tagged = op.Reduce(op.Global("torch.jit._pickle", "restore_type_tag"), ({"w": 1}, "Dict[str, int]"))
    refused(script_archive(tmp_path, op.NewObj(net, (), state=tagged)), "its own __setstate__ code", UnsafePickleError)
    # Called with arguments, or a custom C++ class (restored by its own code).
    refused(script_archive(tmp_path, op.Reduce(net, ("x",))), "constructed with arguments", UnsafePickleError)
    refused(script_archive(tmp_path, op.NewObj(net, ("x",), state={})), "constructed with arguments", UnsafePickleError)
    packed = op.NewObj(op.Global("__torch__.torch.classes.quantized", "Conv2dPackedParamsBase"), (), state={})
    refused(script_archive(tmp_path, packed), "custom C.. class", UnsafePickleError)
    refused(script_archive(tmp_path, op.NewObj(op.Global("__torch__.os", "system;"), (), state={})),
            "not a TorchScript class name", UnsafePickleError)


def test_torchscript_records_are_refused_outside_torchscript(tmp_path):
    (tmp_path / "sd.pth").write_bytes(tw.zip_bytes(op.NewObj(op.Global("__torch__", "Net"), (), state={})))
    refused(tmp_path / "sd.pth", "refusing to load __torch__.Net", UnsafePickleError)


def zip_with(tmp_path, members):
    path = tmp_path / "bad.pth"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate names some tests write
        for name, data in members:
            z.writestr(zipfile.ZipInfo(name), data)
    path.write_bytes(buf.getvalue())
    return path


def good_members():
    data = tw.zip_bytes(tw.state_dict({"w": tw.array_tensor(np.arange(4, dtype=np.float32))}))
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return [(i.filename, z.read(i)) for i in z.infolist()]


@pytest.mark.parametrize("name", ["archive/../evil", "/archive/data/1", "archive/data\\1", "archive/x\x00y", "C:/archive/x",
                                  "archive/./data/1", "archive//data/1"])
def test_member_names_outside_the_archive_are_refused(tmp_path, name):
    path = zip_with(tmp_path, good_members() + [(name.replace("\x00", "#"), b"x")])
    if "\x00" in name:  # zipfile cuts names at NUL when writing: patch the bytes in afterwards
        path.write_bytes(path.read_bytes().replace(name.replace("\x00", "#").encode(), name.encode()))
    refused(path, "points outside the archive")


def test_archive_structure_is_checked(tmp_path):
    members = good_members()
    refused(zip_with(tmp_path, members + [("other/data.pkl", b"x")]), "outside the archive's folder")
    refused(zip_with(tmp_path, members + [members[0]]), "two members named 'archive/data.pkl'")
    refused(zip_with(tmp_path, [m for m in members if not m[0].endswith("data.pkl")]), "without data.pkl")
    refused(zip_with(tmp_path, [("archive/model.json", b"{}")]), "before torch 1.4")
    refused(zip_with(tmp_path, [(n, b"big" if n.endswith("byteorder") else d) for n, d in members]), "not little-endian")
    short = [(n, d[:-4] if n.endswith("data/0") else d) for n, d in members]
    refused(zip_with(tmp_path, short), "holds 12 bytes, not the 16 its record declares")
    refused(zip_with(tmp_path, [m for m in members if not m[0].endswith("data/0")]), "no member archive/data/0")


def test_storage_keys_that_leave_the_data_folder_are_refused(tmp_path):
    for key in ("../../etc/passwd", "/etc/passwd", "0/../../data.pkl", "..", "0\\x"):
        s = tw.Storage(np.ones(2, np.float32), key=key, member="0")
        (tmp_path / "sd.pth").write_bytes(tw.zip_bytes(tw.state_dict({"w": tw.tensor(s)})))
        refused(tmp_path / "sd.pth", "refusing storage key " + re.escape(repr(key)))


def test_views_past_their_storage_are_refused(tmp_path):
    s = tw.Storage(np.ones(6, np.float32))
    for offset, size, stride in [(0, (7,), (1,)), (4, (2, 2), (2, 1)), (0, (2, 3), (4, 1))]:
        (tmp_path / "sd.pth").write_bytes(tw.zip_bytes({"w": tw.tensor(s, offset, size, stride)}))
        refused(tmp_path / "sd.pth", "past the end of its storage", UnsafePickleError)


def test_truncated_files_are_refused(tmp_path):
    tensors, _ = writer_tensors()
    for data in (tw.zip_bytes(tw.state_dict(tensors)), tw.legacy_bytes(tw.state_dict(tensors))):
        for cut in (len(data) // 3, len(data) - 3):
            (tmp_path / "t.pth").write_bytes(data[:cut])
            refused(tmp_path / "t.pth", "truncated")


def patch_member(data, name, field_offset, value, fmt="<L"):
    """Writes ``value`` into a central-directory field of member ``name`` (offsets as in the zip spec)."""
    data = bytearray(data)
    at = data.find(b"PK\x01\x02")
    while at >= 0:
        name_len = struct.unpack_from("<H", data, at + 28)[0]
        if data[at + 46:at + 46 + name_len] == name.encode():
            struct.pack_into(fmt, data, at + field_offset, value)
            return bytes(data)
        at = data.find(b"PK\x01\x02", at + 4)
    raise KeyError(name)


def test_member_data_that_overlaps_or_runs_past_is_refused(tmp_path):
    data = tw.zip_bytes(tw.state_dict({"w": tw.array_tensor(np.ones(64, np.float32))}))
    for size in (300, 10**6):  # compressed sizes 20 (CD offset) and 24 (uncompressed) agree for stored members
        bad = patch_member(patch_member(data, "archive/data/0", 20, size), "archive/data/0", 24, size)
        (tmp_path / "t.pth").write_bytes(bad)
        refused(tmp_path / "t.pth", "overlaps the next member or runs past the directory")


def test_bad_crc_is_refused(tmp_path):
    data = bytearray(tw.zip_bytes(tw.state_dict({"w": tw.array_tensor(np.arange(64, dtype=np.float32))})))
    at = data.find(np.arange(64, dtype=np.float32).tobytes())
    data[at + 17] ^= 0xFF
    (tmp_path / "t.pth").write_bytes(bytes(data))
    refused(tmp_path / "t.pth", "archive member archive/data/0 is corrupt or truncated .*CRC")


def deflated_member(tmp_path, member, raw, declared=None):
    """A zip archive whose ``member`` is ``raw`` deflated (``declared`` patches its uncompressed size)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, d in good_members():
            info = zipfile.ZipInfo(name)
            info.compress_type = zipfile.ZIP_DEFLATED if name == member else zipfile.ZIP_STORED
            z.writestr(info, raw if name == member else d)
    data = buf.getvalue()
    if declared is not None:
        data = patch_member(data, member, 24, declared)
    (tmp_path / "z.pth").write_bytes(data)
    return tmp_path / "z.pth"


def test_zip_bombs_are_refused(tmp_path, monkeypatch):
    path = deflated_member(tmp_path, "archive/data/0", bytes(16 << 20))
    refused(path, "declares 16777216 bytes from .* compressed .a zip bomb")
    # Inflating to more than declared stops at the declared size and fails the CRC.
    refused(deflated_member(tmp_path, "archive/data/0", bytes(4 << 20), declared=16), "is corrupt or truncated")
    # An honest ratio, a declared size beyond the budget (its 1 GiB allowance shrunk for the test).
    monkeypatch.setattr(budget_module, "LARGEST_NETWORK_BYTES", 1 << 20)
    path = deflated_member(tmp_path, "archive/data.pkl", os.urandom(1 << 20), declared=50 << 20)
    msg = refused(path, "archive member archive/data.pkl would need 50.0 MiB .* beyond the reader's budget",
                  ResourceLimitError)
    assert "2 x its size + 1.0 MiB" in msg


def test_unsupported_compression_and_encryption_are_refused(tmp_path):
    data = tw.zip_bytes(tw.state_dict({"w": tw.array_tensor(np.ones(2, np.float32))}))
    (tmp_path / "t.pth").write_bytes(patch_member(data, "archive/data/0", 10, 12, "<H"))  # bzip2
    refused(tmp_path / "t.pth", "uses compression 12")
    (tmp_path / "t.pth").write_bytes(patch_member(data, "archive/data/0", 8, 1, "<H"))  # encrypted flag
    refused(tmp_path / "t.pth", "is encrypted")


def test_legacy_stream_inconsistencies_are_refused(tmp_path):
    sd = tw.state_dict({"w": tw.array_tensor(np.ones(3, np.float32))})
    (tmp_path / "t.pth").write_bytes(tw.legacy_bytes(sd, keys_override=["1", "2"]))
    refused(tmp_path / "t.pth", "storage key list does not match its storages", UnsafePickleError)
    s = tw.Storage(np.ones(3, np.float32), numel=5)  # declares 5 elements, writes 3
    (tmp_path / "t.pth").write_bytes(tw.legacy_bytes({"w": tw.tensor(s, size=(3,))}))
    refused(tmp_path / "t.pth", "truncated")
    data = tw.legacy_bytes(sd)
    (tmp_path / "t.pth").write_bytes(data.replace(b"\x8a\x0a\x6c\xfc", b"\x8a\x0a\x6d\xfc", 1))
    refused(tmp_path / "t.pth", "a pickle but not a torch.save file")


def test_other_files_are_refused(tmp_path):
    refused(tmp_path / "missing.pt", "no such file")
    (tmp_path / "a.pkl").write_bytes(op.tf1_pickle(dict(resolution=8, fmap_base=32, fmap_max=16, latent_size=8,
                                                        dlatent_size=8, mapping_layers=1, mapping_fmaps=8),
                                                   dict(resolution=8, fmap_base=32, fmap_max=16))[0])
    refused(tmp_path / "a.pkl", "is a pickle but not a torch.save file")
    (tmp_path / "b.pt").write_bytes(b"GIF89a" + bytes(100))
    refused(tmp_path / "b.pt", "is not a torch file")
    (tmp_path / "c.pt").write_bytes(pickle.dumps({"a": 1}, protocol=2))
    refused(tmp_path / "c.pt", "is a pickle but not a torch.save file")
    (tmp_path / "d.pt").write_bytes(zlib.compress(b"x") + b"PK")
    refused(tmp_path / "d.pt", "is not a torch file")
