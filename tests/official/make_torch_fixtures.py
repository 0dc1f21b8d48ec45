"""Checks the pure-Python torch writers and the reader against torch itself, and writes the fixtures.

Needs torch (not run by CI): ``python tests/official/make_torch_fixtures.py [--write]`` from the
repository root, in an environment with ``torch==2.13.0 numpy`` and this repository's
dependencies. It asserts, and prints what it checked:

1. ``torch.load(weights_only=True)`` reads the legacy and zip files that ``torch_writer`` makes
   (views, shared storages, every dtype), and ``torch.jit.load`` its TorchScript archives;
2. ``load_torch`` reads what ``torch.save`` (both formats) and ``torch.jit.save`` (a scripted
   module with submodules, a traced child with a constant) write, tensor for tensor;
3. with ``--write``: saves those three torch-written files to ``tests/official/fixtures/``, whose
   values ``test_torch_files.py`` recomputes from the formulas in :func:`fixture_state`.
"""

import argparse
import os
import sys
import tempfile

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(os.path.dirname(HERE))]

import torch_writer as tw  # noqa: E402

from tf_stylegan2.official.safe_unpickle import load_torch  # noqa: E402

FIXTURES = os.path.join(HERE, "fixtures")


def fixture_state():
    """The fixtures' tensors: test_torch_files.expected_state() is the numpy twin of this."""
    base = torch.arange(10, dtype=torch.float32) / 4 - 1
    return {
        "conv.weight": torch.arange(24, dtype=torch.float32).reshape(2, 3, 2, 2) / 8 - 1,
        "shared.base": base,
        "shared.slice": base[3:5],  # offset 3 into the same storage
        "shared.transposed": base[:6].view(2, 3).t(),  # strides (1, 3)
        "expanded": (torch.arange(3, dtype=torch.float32) + 1).view(1, 3).expand(4, 3),  # stride 0
        "half": torch.tensor([0.5, -1.5, 2.0], dtype=torch.float16),
        "bf16": torch.tensor([1.0, -2.5, 3.140625], dtype=torch.bfloat16),
        "steps": torch.tensor(7),
        "mask": torch.tensor([True, False, True]),
        "bytes": torch.arange(4, dtype=torch.uint8),
    }


class Layer(torch.nn.Module):
    def __init__(self, n: int, start: float):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.arange(n * 3, dtype=torch.float32).reshape(n, 3) / 16 + start)
        self.register_buffer("mean", torch.full((n,), start))

    def forward(self, x):
        return x @ self.weight.t() - self.mean


class Shift(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.shift = torch.tensor([0.25, -0.5])  # a plain attribute: tracing makes it a constant

    def forward(self, x):
        return x + self.shift


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = torch.nn.Sequential(Layer(2, 0.5), Layer(2, -1.0))
        self.output = torch.nn.Linear(2, 2)
        with torch.no_grad():
            self.output.weight.copy_(torch.tensor([[1.0, 2.0], [3.0, 4.0]]))
            self.output.bias.copy_(torch.tensor([-1.0, 1.0]))
        self.shift = torch.jit.trace(Shift(), torch.zeros(2))

    def forward(self, x):
        return self.shift(self.output(self.layers[1](self.layers[0](x)[:, :1].expand(-1, 3))))


def as_numpy(t: torch.Tensor) -> np.ndarray:
    return t.float().numpy() if t.dtype == torch.bfloat16 else t.numpy()


def check_equal(got: dict, expected: dict, what: str) -> None:
    assert sorted(got) == sorted(expected), (what, sorted(got), sorted(expected))
    for name, value in expected.items():
        value = as_numpy(value) if isinstance(value, torch.Tensor) else value
        assert got[name].dtype == value.dtype and got[name].shape == value.shape, (what, name, got[name].dtype, value.dtype)
        assert np.array_equal(got[name], value), (what, name)
    print(f"  ok  {what}: {len(expected)} tensors")


def writer_to_torch(tmp: str) -> None:
    """torch reads what torch_writer writes."""
    arrays = tw.example_tensors()
    storage = tw.Storage(np.arange(12, dtype=np.float32))
    bf16 = tw.Storage((np.array([1.0, -2.5], np.float32).view(np.uint32) >> 16).astype(np.uint16), "BFloat16Storage")
    tensors = {k: tw.array_tensor(v) for k, v in arrays.items()}
    tensors.update({"view.t": tw.tensor(storage, 2, (3, 2), (1, 3)), "view.full": tw.tensor(storage, 0, (12,), (1,)),
                    "view.zero": tw.tensor(storage, 5, (2, 3), (0, 1)), "bf16": tw.tensor(bf16, 0, (2,), (1,))})
    flat = np.arange(12, dtype=np.float32)
    expected = dict(arrays)
    expected.update({"view.t": np.lib.stride_tricks.as_strided(flat[2:], (3, 2), (4, 12)).copy(), "view.full": flat,
                     "view.zero": np.lib.stride_tricks.as_strided(flat[5:], (2, 3), (0, 4)).copy(),
                     "bf16": np.array([1.0, -2.5], np.float32)})
    for name, data in (("legacy", tw.legacy_bytes(tw.state_dict(tensors))), ("zip", tw.zip_bytes(tw.state_dict(tensors)))):
        path = os.path.join(tmp, f"writer-{name}.pth")
        with open(path, "wb") as f:
            f.write(data)
        loaded = torch.load(path, weights_only=True)
        check_equal({k: as_numpy(v) for k, v in loaded.items()}, expected, f"torch.load of torch_writer's {name} file")
        check_equal(load_torch(path).tensors, expected, f"load_torch of torch_writer's {name} file")
    root = tw.Module("Net", {"scale": np.float32([2.0, 3.0])}, {
        "layers": tw.Module("Seq", children={"0": tw.Module("Layer", {"weight": arrays["conv.weight"]})}),
        "output": tw.Module("Linear", {"weight": arrays["fc.weight"], "bias": arrays["conv.bias"]})})
    path = os.path.join(tmp, "writer-script.pt")
    with open(path, "wb") as f:
        f.write(tw.torchscript_bytes(root))
    module = torch.jit.load(path)
    named = {k: as_numpy(v) for k, v in module.state_dict().items()}
    expected = {"scale": np.float32([2.0, 3.0]), "layers.0.weight": arrays["conv.weight"],
                "output.weight": arrays["fc.weight"], "output.bias": arrays["conv.bias"]}
    check_equal(named, expected, "torch.jit.load of torch_writer's TorchScript archive")
    check_equal(load_torch(path).tensors, expected, "load_torch of torch_writer's TorchScript archive")
    assert module.original_name == "Net" and module.layers.original_name == "Seq"


def torch_to_reader(out_dir: str) -> dict:
    """load_torch reads what torch writes; returns the paths written."""
    state = fixture_state()
    paths = {"legacy": os.path.join(out_dir, "torch_legacy.pth"), "zip": os.path.join(out_dir, "torch_zip.pth"),
             "script": os.path.join(out_dir, "torchscript.pt")}
    torch.save(state, paths["legacy"], _use_new_zipfile_serialization=False)
    torch.save(state, paths["zip"])
    net = torch.jit.script(Net().eval())
    torch.jit.save(net, paths["script"])
    for kind in ("legacy", "zip"):
        got = load_torch(paths[kind])
        assert got.format == {"legacy": "torch-legacy", "zip": "torch-zip"}[kind]
        check_equal(got.tensors, state, f"load_torch of torch.save ({kind})")
    got = load_torch(paths["script"])
    assert got.format == "torchscript"
    reloaded = torch.jit.load(paths["script"])
    expected = dict(reloaded.state_dict())
    constants = {k: v for k, v in got.tensors.items() if k.startswith("CONSTANTS.")}
    check_equal({k: v for k, v in got.tensors.items() if k not in constants}, expected, "load_torch of torch.jit.save")
    # The traced child keeps its tensor as a code constant: the only float constant of the archive.
    assert any(np.array_equal(v, np.float32([0.25, -0.5])) for v in constants.values()), constants
    print(f"  ok  the traced constant is among {sorted(constants)}")
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--write", action="store_true", help="write the fixtures to tests/official/fixtures/")
    args = parser.parse_args()
    print(f"torch {torch.__version__}")
    with tempfile.TemporaryDirectory() as tmp:
        writer_to_torch(tmp)
        paths = torch_to_reader(FIXTURES if args.write else tmp)
    if args.write:
        for path in paths.values():
            print(f"  wrote {os.path.relpath(path)} ({os.path.getsize(path)} bytes)")


if __name__ == "__main__":
    main()
