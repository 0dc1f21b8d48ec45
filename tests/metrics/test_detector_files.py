"""Weights files for the feature networks: which are accepted, the identity recorded, and a
one-line UserError naming the problem for everything else."""

import hashlib
import os
import re
import sys
import types

import keras
import numpy as np
import pytest

import random_weights
from tf_stylegan2.fileio import UserError
from tf_stylegan2.metrics import detectors
from tf_stylegan2.official import safe_unpickle

# The pure-Python torch file writer of the reader's tests.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "official"))
import torch_writer as tw  # noqa: E402


def one_line(excinfo) -> str:
    message = str(excinfo.value)
    assert "\n" not in message
    return message


def small(shape=(1,)):
    return np.zeros(shape, np.float32)


def test_known_files_match_their_hub_names():
    # torch hub file names end in the first 8 hex digits of the file's sha256.
    for sha, name in detectors.KNOWN_FILES.items():
        assert re.fullmatch("[0-9a-f]{64}", sha)
        suffix = re.search(r"-([0-9a-f]{8})\.pth$", name)
        if suffix:
            assert sha.startswith(suffix.group(1)), name


def test_imagenet_inception_is_refused():
    state = {"Conv2d_1a_3x3.conv.weight": small((32, 3, 3, 3)), "AuxLogits.fc.weight": small((1000, 768)),
             "fc.weight": small((1000, 2048))}
    with pytest.raises(UserError) as e:
        detectors.build_inception(state, {"file": "inception_v3_google-0cc3c7bd.pth"})
    message = one_line(e)
    assert "ImageNet" in message and "not the FID network" in message and "pt_inception-2015-12-05" in message
    del state["AuxLogits.fc.weight"]  # 1000 classes alone are enough to tell
    with pytest.raises(UserError, match="not the FID network"):
        detectors.build_inception(state, {"file": "x.pth"})


@pytest.mark.parametrize("keys,message", [
    (["features.0.weight", "classifier.0.weight"], "a VGG network, not an Inception-v3"),
    (["lin0.model.1.weight"], "LPIPS's linear layers, not an Inception-v3"),
    (["model.0.weight", "model.1.bias"], r"unknown tensors \(model.0.weight, model.1.bias\), not an Inception-v3"),
    ([], "no tensors, not an Inception-v3"),
])
def test_other_files_are_not_inception(keys, message):
    with pytest.raises(UserError, match=message) as e:
        detectors.build_inception({k: small() for k in keys}, {"file": "w.pth"})
    assert one_line(e).startswith("w.pth")


def test_inception_with_a_wrong_shape_or_missing_tensor_is_refused():
    state = random_weights.inception_state()
    state["Mixed_6b.branch7x7_2.conv.weight"] = state["Mixed_6b.branch7x7_2.conv.weight"].transpose(0, 1, 3, 2)
    with pytest.raises(UserError, match=r"Mixed_6b.branch7x7_2.conv.weight has shape \[128, 128, 7, 1\], "
                                        r"expected \[128, 128, 1, 7\]") as e:
        detectors.build_inception(state, {"file": "w.pth"})
    one_line(e)
    state = random_weights.inception_state()
    del state["Mixed_7c.branch_pool.bn.running_var"]
    with pytest.raises(UserError, match="missing tensor Mixed_7c.branch_pool.bn.running_var"):
        detectors.build_inception(state, {"file": "w.pth"})
    state = random_weights.inception_state()
    state["Mixed_7d.conv.weight"] = small()
    with pytest.raises(UserError, match="unexpected tensor Mixed_7d.conv.weight"):
        detectors.build_inception(state, {"file": "w.pth"})
    nvidia = {"layers.conv.conv.weight": small()}
    with pytest.raises(UserError, match="missing tensor layers.conv.bn.bias"):
        detectors.build_inception(nvidia, {"file": "inception-2015-12-05.pt"})


def vgg_keys(conv_indices, bn=False):
    keys = [f"features.{i}.{p}" for i in conv_indices for p in ("weight", "bias")]
    if bn:
        keys += [f"features.{i + 1}.running_mean" for i in conv_indices]
    return {k: small() for k in keys + ["classifier.0.weight"]}


def test_other_vggs_are_refused():
    vgg19 = [0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34]
    with pytest.raises(UserError, match="is a VGG19 .16 conv layers., not VGG16") as e:
        detectors.build_vgg16(vgg_keys(vgg19), {"file": "vgg19-dcbb9e9d.pth"})
    one_line(e)
    with pytest.raises(UserError, match="batch norm"):
        detectors.build_vgg16(vgg_keys([0, 3, 7], bn=True), {"file": "vgg16_bn-6c64b313.pth"})
    with pytest.raises(UserError, match="more than 13 conv layers"):
        detectors.build_vgg16({f"layers.conv{k}.weight": small() for k in range(1, 17)}, {"file": "vgg19.pt"})
    with pytest.raises(UserError, match="an Inception network, not a VGG16"):
        detectors.build_vgg16({"Conv2d_1a_3x3.conv.weight": small()}, {"file": "pt_inception.pth"})
    with pytest.raises(UserError, match="only LPIPS's linear layers: pass it as lpips_path"):
        detectors.build_vgg16(random_weights.lpips_state(), {"file": "vgg.pth"})


def test_wrong_lpips_weights_are_refused():
    vgg = vgg_keys([i for i, _ in random_weights.VGG16_CONVS])  # the LPIPS file is checked before shapes
    lins = random_weights.lpips_state()
    lins["lin2.model.1.weight"] = lins["lin2.model.1.weight"][:, :128]
    with pytest.raises(UserError, match=r"lpips.pth: LPIPS layer 2 has shape \[1, 128, 1, 1\], expected 256"):
        detectors.build_vgg16(vgg, {"file": "vgg16.pth", "lpips_file": "lpips.pth"}, lins)
    with pytest.raises(UserError, match="lpips.pth: not the lpips package's LPIPS weights"):
        detectors.build_vgg16(vgg, {"file": "vgg16.pth", "lpips_file": "lpips.pth"}, {"lin0.weight": small()})


def test_missing_and_keras_files_are_refused(tmp_path):
    with pytest.raises(UserError, match="no such file") as e:
        detectors.load_inception(str(tmp_path / "pt_inception-2015-12-05-6726825d.pth"))
    one_line(e)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    path = tmp_path / "inception.keras"
    model.save(path)
    for load in (detectors.load_inception, detectors.load_vgg16):
        with pytest.raises(UserError, match="is a Keras model, not") as e:
            load(str(path))
        one_line(e)


def fake_reader(monkeypatch, files):
    """safe_unpickle.load_torch replaced by a table path -> (format, tensors)."""
    def load_torch(path):
        fmt, tensors = files[str(path)]
        with open(path, "rb") as f:
            sha = hashlib.sha256(f.read()).hexdigest()
        return types.SimpleNamespace(format=fmt, tensors=tensors, sha256=sha)
    monkeypatch.setattr(safe_unpickle, "load_torch", load_torch, raising=False)


def test_identity_names_the_files(tmp_path, monkeypatch):
    """load_* record network, file, sha256 and format (+ known_as for a published file), and the
    LPIPS file's identity beside VGG16's; the reader is faked here (its own tests cover it)."""
    vgg, lpips_file = tmp_path / "vgg16-397923af.pth", tmp_path / "vgg.pth"
    vgg.write_bytes(b"vgg")
    lpips_file.write_bytes(b"lpips")
    known = hashlib.sha256(b"lpips").hexdigest()
    monkeypatch.setitem(detectors.KNOWN_FILES, known, "lpips/weights/v0.1/vgg.pth")
    fake_reader(monkeypatch, {str(vgg): ("torch-legacy", vgg_keys([0, 2, 5])),
                              str(lpips_file): ("torch-legacy", random_weights.lpips_state())})
    captured = {}
    monkeypatch.setattr(detectors, "build_vgg16", lambda t, identity, lpips=None: captured.update(identity))
    detectors.load_vgg16(str(vgg), str(lpips_file))
    assert captured == {
        "network": "vgg16", "file": "vgg16-397923af.pth", "sha256": hashlib.sha256(b"vgg").hexdigest(),
        "format": "torch-legacy", "lpips_file": "vgg.pth", "lpips_sha256": known, "lpips_format": "torch-legacy",
        "lpips_known_as": "lpips/weights/v0.1/vgg.pth",
    }


def test_nvidia_vgg16_identity_covers_lpips(tmp_path, monkeypatch):
    path = tmp_path / "vgg16.pt"
    path.write_bytes(b"nvidia")
    fake_reader(monkeypatch, {str(path): ("torchscript", {"layers.conv1.weight": small(), "lpips0": small()})})
    captured = {}
    monkeypatch.setattr(detectors, "build_vgg16", lambda t, identity, lpips=None: captured.update(identity))
    detectors.load_vgg16(str(path))
    assert captured["format"] == captured["lpips_format"] == "torchscript"
    assert captured["lpips_file"] == "vgg16.pt" and captured["lpips_sha256"] == captured["sha256"]


def test_reader_errors_name_the_role(tmp_path, monkeypatch):
    path = tmp_path / "inception-2015-12-05.pt"
    path.write_bytes(b"junk")

    def load_torch(p):
        raise UserError(f"{p}: truncated zip archive")
    monkeypatch.setattr(safe_unpickle, "load_torch", load_torch, raising=False)
    with pytest.raises(UserError, match="cannot read Inception weights .*truncated zip archive") as e:
        detectors.load_inception(str(path))
    one_line(e)


# --- whole files, written in torch's formats by tests/official/torch_writer.py ----------------


@pytest.fixture(scope="module")
def inception_state():
    return random_weights.inception_state()


@pytest.fixture(scope="module")
def reference(inception_state):
    return detectors.build_inception(inception_state, {"file": "random"})


def weights(detector):
    """(path, value) of every weight in creation order (Keras paths repeat: conv/kernel, ...)."""
    return [(v.path, v.numpy()) for v in detector.model.weights]


def write(path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


@pytest.mark.parametrize("fmt", ["torch-zip", "torch-legacy"])
def test_pytorch_fid_file_in_both_torch_save_formats(tmp_path, inception_state, reference, fmt):
    obj = tw.state_dict({k: tw.array_tensor(v) for k, v in inception_state.items()})
    data = tw.zip_bytes(obj) if fmt == "torch-zip" else tw.legacy_bytes(obj)
    path = write(tmp_path / "pt_inception-2015-12-05-6726825d.pth", data)
    detector = detectors.load_inception(path)
    assert detector.identity == {"network": "inception-2015-12-05", "file": "pt_inception-2015-12-05-6726825d.pth",
                                 "sha256": hashlib.sha256(data).hexdigest(), "format": fmt}
    ours, got = weights(reference), weights(detector)
    assert len(ours) == len(got) == 471
    for (k, mine), (_, theirs) in zip(ours, got):
        np.testing.assert_array_equal(theirs, mine, err_msg=k)
    if fmt == "torch-zip":
        image = np.random.default_rng(3).integers(0, 256, (1, 30, 30, 3), dtype=np.uint8)
        np.testing.assert_array_equal(detector(image)["pool3"].numpy(), reference(image)["pool3"].numpy())
        truncated = write(tmp_path / "truncated.pth", data[: len(data) // 2])
        with pytest.raises(UserError, match="cannot read Inception weights .*truncated.pth") as e:
            detectors.load_inception(truncated)
        one_line(e)


def module_tree(name: str, tensors: dict) -> tw.Module:
    """A TorchScript module tree whose parameters have the given dotted names."""
    own = {k: v for k, v in tensors.items() if "." not in k}
    children = {}
    for k, v in tensors.items():
        if "." in k:
            head, rest = k.split(".", 1)
            children.setdefault(head, {})[rest] = v
    return tw.Module(name, own, {c: module_tree(f"{name}_{c}", t) for c, t in children.items()})


def test_nvidia_torchscript_inception(tmp_path, inception_state, reference):
    """A TorchScript archive with NVIDIA's module names and no BN scale (the 2015 graph has none)."""
    theirs = {detectors.nvidia_inception_key(k): v for k, v in inception_state.items()
              if not k.endswith(".bn.weight")}
    data = tw.torchscript_bytes(module_tree("InceptionV3", theirs), constants=[np.zeros(2, np.float32)])
    detector = detectors.load_inception(write(tmp_path / "inception-2015-12-05.pt", data))
    assert detector.identity["format"] == "torchscript" and "known_as" not in detector.identity
    ours, got = weights(reference), weights(detector)
    assert len(ours) == len(got)
    for (k, mine), (_, theirs) in zip(ours, got):
        np.testing.assert_array_equal(theirs, 1.0 if k.endswith("gamma") else mine, err_msg=k)


def test_refused_files_name_themselves(tmp_path):
    imagenet = {"Conv2d_1a_3x3.conv.weight": np.zeros((32, 3, 3, 3), np.float32),
                "AuxLogits.fc.weight": np.zeros((1000, 768), np.float32)}
    path = write(tmp_path / "inception_v3_google-0cc3c7bd.pth",
                 tw.zip_bytes(tw.state_dict({k: tw.array_tensor(v) for k, v in imagenet.items()})))
    with pytest.raises(UserError, match="^inception_v3_google-0cc3c7bd.pth is torchvision's ImageNet") as e:
        detectors.load_inception(path)
    one_line(e)
    vgg19 = {f"layers.conv{k}.weight": np.zeros(1, np.float32) for k in range(1, 17)}
    path = write(tmp_path / "vgg19.pt", tw.torchscript_bytes(module_tree("VGG19", vgg19)))
    with pytest.raises(UserError, match="^vgg19.pt has more than 13 conv layers"):
        detectors.load_vgg16(path)
    path = write(tmp_path / "notes.pth", b"not a torch file")
    with pytest.raises(UserError, match="cannot read VGG16 weights .*notes.pth.*not a torch file") as e:
        detectors.load_vgg16(path)
    one_line(e)
