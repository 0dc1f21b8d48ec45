"""Resource bounds of the reader: tiny hostile files are refused before they can take memory.

The hostile files run in one subprocess whose address space is capped (``RLIMIT_AS``) at what it
uses after importing the library plus ``MARGIN``: a reader that allocated what such a file asks
for (gigabytes) would die with MemoryError there instead of refusing the file with one line.
"""

import collections
import io
import json
import os
import subprocess
import sys
import zipfile

import numpy as np
import official_pickles as op
import pytest
import torch_writer as tw

from tf_stylegan2 import official
from tf_stylegan2.official import budget as budget_module
from tf_stylegan2.official import safe_unpickle
from tf_stylegan2.official.safe_unpickle import ResourceLimitError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MARGIN = 256 << 20  # address space the child may add while reading every case

CHILD = r"""
import json, resource, sys
sys.path.insert(0, ".")
from tf_stylegan2 import official
from tf_stylegan2.fileio import UserError
from tf_stylegan2.official import safe_unpickle

def pickle_load(path):
    with open(path, "rb") as f:
        return safe_unpickle.load(f, path)

readers = {"read": official.read, "torch": official.load_torch, "pickle": pickle_load}
cases, margin = json.loads(sys.argv[1]), int(sys.argv[2])
page = resource.getpagesize()
statm = lambda: [int(v) * page for v in open("/proc/self/statm").read().split()[:2]]
vm, rss = statm()
resource.setrlimit(resource.RLIMIT_AS, (vm + margin, vm + margin))
peak_before = max(rss, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
out = {}
for name, kind, path in cases:
    try:
        readers[kind](path)
        out[name] = "accepted"
    except UserError as e:
        out[name] = "UserError: " + str(e)
    except MemoryError:
        out[name] = "MemoryError"
out["peak growth"] = max(0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - peak_before)
print(json.dumps(out))
"""


def zip_with_deflated_zeros(path, nbytes):
    """A zip state dict whose one storage member inflates to ``nbytes`` zeros."""
    good = tw.zip_bytes(tw.state_dict({"w": tw.array_tensor(np.zeros(4, np.float32))}))
    with zipfile.ZipFile(io.BytesIO(good)) as src, zipfile.ZipFile(path, "w", compresslevel=1) as z:
        for info in src.infolist():
            if info.filename.endswith("data/0"):
                deflated = zipfile.ZipInfo(info.filename)
                deflated.compress_type = zipfile.ZIP_DEFLATED
                with z.open(deflated, "w") as member:  # streamed: never in memory
                    for _ in range(nbytes >> 20):
                        member.write(bytes(1 << 20))
            else:
                z.writestr(info, src.read(info))
    return path


def declare(path, name, size):
    """A copy of ``path`` whose member data/0 declares ``size`` uncompressed bytes in the central directory."""
    data = bytearray(open(path, "rb").read())
    at = data.find(b"PK\x01\x02")
    while not data[at + 46:at + 60].startswith(b"archive/data/0"):
        at = data.find(b"PK\x01\x02", at + 4)
    data[at + 24:at + 28] = size.to_bytes(4, "little")
    out = os.path.join(os.path.dirname(path), name)
    with open(out, "wb") as f:
        f.write(bytes(data))
    return out


def zip_members(members):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in members:
            z.writestr(name, data)
    return buf.getvalue()


def hostile_files(tmp):
    """name -> (reader, path, phrase of the expected one-line refusal)."""
    def write(name, data):
        path = os.path.join(tmp, name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    one = op.Reduce(op.LOAD_FROM_BYTES, (op.torch_storage_bytes(np.ones(1, np.float32)),))
    stride0 = op.Reduce(op.REBUILD_TENSOR, (one, 0, (1 << 16, 1 << 16), (0, 0), False, collections.OrderedDict()))
    square = tw.Storage(np.ones(1 << 20, np.float32))
    views = {f"t{i}": tw.tensor(square, 0, (1024, 1024), (1, 1024)) for i in range(2000)}  # each a 4 MiB copy
    cases = {
        # Python's unpickler allocates a memo table for every index below the largest: 2 GiB here.
        "memo (9 bytes)": ("read", write("memo.pkl", b"\x80\x02Nr" + (1 << 27).to_bytes(4, "little") + b"."),
                           "memo indices must be sequential"),
        "memo in a torch archive": ("torch", write("memo.pth", zip_members([
            ("archive/data.pkl", b"\x80\x02Nr" + (1 << 27).to_bytes(4, "little") + b"."), ("archive/version", b"3\n")])),
            "memo indices must be sequential"),
        "declared 1 TiB of bytes": ("read", write("bytes.pkl", b"\x80\x04\x8e" + (1 << 40).to_bytes(8, "little") + b"."),
                                    "declares 1099511627776 bytes where 1 remain"),
        "declared 1 TiB frame": ("read", write("frame.pkl", b"\x80\x04\x95" + (1 << 40).to_bytes(8, "little") + b"N."),
                                 "a pickle frame declares 1099511627776 bytes"),
        "5 M empty dicts": ("pickle", write("dicts.pkl", b"\x80\x04" + b"}" * (5 << 20) + b"."),
                            "the objects of its pickle .* beyond the reader's budget"),
        "stride-0 view in a pickle": ("read", write("stride0.pkl", op.dumps({"G_ema": stride0}, 4)),
                                      r"a tensor of shape \[65536, 65536\] would need 16.0 GiB"),
        "stride-0 view in an archive": ("torch", write("stride0.pth", tw.zip_bytes(
            {"w": tw.tensor(tw.Storage(np.ones(1, np.float32)), 0, (1 << 16, 1 << 16), (0, 0))})),
            r"a tensor of shape \[65536, 65536\] would need 16.0 GiB"),
        "2000 views of one storage": ("torch", write("shared.pth", tw.zip_bytes(views)),
                                      r"a tensor of shape \[1024, 1024\] would need 4.0 MiB on top of 1.0 GiB"),
        "legacy storage of 2**40 elements": ("torch", write("legacy.pth", tw.legacy_bytes(
            {"w": tw.tensor(tw.Storage(np.ones(1, np.float32), numel=1 << 40), size=(1,))})),
            "storage '.*' would need 4096.0 GiB"),
    }
    # More zeros than MARGIN: inflating them at once would fail the test with MemoryError.
    bomb = zip_with_deflated_zeros(os.path.join(tmp, "ratio.pth"), 320 << 20)
    cases["320 MiB of zeros deflated"] = ("torch", bomb, "declares 335544320 bytes from .* zip bomb")
    cases["320 MiB inflating from a member declaring 16 bytes"] = ("torch", declare(bomb, "inflate.pth", 16),
                                                                    "archive/data/0 is corrupt or truncated .*CRC")
    return cases


def test_hostile_files_are_refused_within_a_small_memory_bound(tmp_path):
    cases = hostile_files(str(tmp_path))
    legit = str(tmp_path / "legit.pth")  # a control: an ordinary 8 MiB file still reads under the cap
    with open(legit, "wb") as f:
        f.write(tw.zip_bytes(tw.state_dict({"fc.weight": tw.array_tensor(np.ones((1024, 2048), np.float32))})))
    spec = [(name, kind, path) for name, (kind, path, _) in cases.items()] + [("legit", "torch", legit)]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    r = subprocess.run([sys.executable, "-c", CHILD, json.dumps(spec), str(MARGIN)], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    for name, (_, path, phrase) in cases.items():
        assert out[name].startswith("UserError: ") and "\n" not in out[name], (name, out[name])
        assert __import__("re").search(phrase, out[name]), (name, out[name])
        assert os.path.getsize(path) < 12 << 20  # small files, every one
    assert out["legit"] == "accepted"
    assert out["peak growth"] < 128 << 20, out["peak growth"]


# --- the rules, in process ------------------------------------------------------------------------


def test_sequential_memo_indices_load_and_a_gap_is_refused():
    for put in (b"q\x00", b"r\x00\x00\x00\x00", b"p0\n", b"\x94"):  # BINPUT, LONG_BINPUT, PUT, MEMOIZE of index 0
        assert safe_unpickle.load(io.BytesIO(b"\x80\x04K\x07" + put + b"h\x00\x86."), "m") == (7, 7)
    with pytest.raises(ResourceLimitError, match="memo entry 2 when only 1 exist"):
        safe_unpickle.load(io.BytesIO(b"\x80\x04K\x07q\x00q\x02."), "m")


class RecordingBudget(budget_module.Budget):
    made = []

    def __init__(self, *args):
        super().__init__(*args)
        RecordingBudget.made.append(self)


def charged(monkeypatch, read, path):
    """(bytes charged, file size, tensors read) for reading ``path``."""
    RecordingBudget.made = []
    monkeypatch.setattr(safe_unpickle, "Budget", RecordingBudget)
    result = read(path)
    (budget,) = RecordingBudget.made
    tensors = result.tensors if hasattr(result, "tensors") else [t for n in result.networks.values() for t in n.tensors]
    return budget.used, os.path.getsize(path), len(tensors)


def test_legitimate_files_are_charged_twice_their_size_plus_a_little_per_tensor(tmp_path, monkeypatch):
    """So ``2 x size + 1 GiB`` admits every real network: VGG16's 528 MiB file (32 tensors) is charged
    ~1.03 GiB; a config-F ada pickle (364 MiB, 446 tensors) was measured at 0.73 GiB."""
    rng = np.random.RandomState(0)
    sd = {f"features.{i}.weight": rng.randn(256, 256, 3, 3).astype(np.float32) for i in range(4)}  # 9 MiB
    writers = {"legacy.pth": tw.legacy_bytes, "zip.pth": tw.zip_bytes}
    for name, write in writers.items():
        (tmp_path / name).write_bytes(write(tw.state_dict({k: tw.array_tensor(v) for k, v in sd.items()})))
    (tmp_path / "script.pt").write_bytes(tw.torchscript_bytes(tw.Module("Net", sd)))
    g = dict(z_dim=128, c_dim=0, w_dim=128, img_resolution=32, img_channels=3, mapping_kwargs=dict(num_layers=2),
             synthesis_kwargs=dict(channel_base=4096, channel_max=128))
    d = dict(c_dim=0, img_resolution=32, img_channels=3, channel_base=4096, channel_max=128)
    (tmp_path / "ada.pkl").write_bytes(op.ada_pickle(g, d)[0])  # 15 MiB
    tf1_g = dict(resolution=32, fmap_base=2048, fmap_max=128, latent_size=128, dlatent_size=128, mapping_layers=2,
                 mapping_fmaps=128)
    (tmp_path / "tf1.pkl").write_bytes(op.tf1_pickle(tf1_g, dict(resolution=32, fmap_base=2048, fmap_max=128))[0])
    results = {name: charged(monkeypatch, official.load_torch, str(tmp_path / name))
               for name in ("legacy.pth", "zip.pth", "script.pt")}
    results.update({name: charged(monkeypatch, official.read, str(tmp_path / name)) for name in ("ada.pkl", "tf1.pkl")})
    print({name: (round(used / size, 3), round((used - 2 * size) / n)) for name, (used, size, n) in results.items()})
    for name, (used, size, n) in results.items():
        assert size > 8 << 20
        assert size <= used <= budget_module.FILE_SIZE_MULTIPLE * size + n * (48 << 10), (name, used, size, n)
