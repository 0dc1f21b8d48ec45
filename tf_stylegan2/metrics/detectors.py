"""Feature networks from the weights files users already hold: :func:`load_inception`,
:func:`load_vgg16`.

The files are torch files (a plain ``torch.save`` state dict, legacy stream or zip archive, or a
TorchScript archive); the one restricted reader of the project,
``tf_stylegan2.official.safe_unpickle.load_torch``, turns them into numpy arrays without running
anything they contain, and the weights are converted once into the Keras networks of
:mod:`~tf_stylegan2.metrics.inception`, :mod:`~tf_stylegan2.metrics.vgg16` and
:mod:`~tf_stylegan2.metrics.lpips`. Nothing is downloaded: users fetch the files by name
(docs/METRICS.md lists them with their sha256).

Accepted files, told apart by their tensor names (not by file names):

* Inception: pytorch-fid's ``pt_inception-2015-12-05-6726825d.pth`` (torch-fidelity distributes
  the same file as ``weights-inception-2015-12-05-6726825d.pth``): torchvision-style names such
  as ``Mixed_7c.branch_pool.bn.running_var``; and NVIDIA's TorchScript
  ``inception-2015-12-05.pt``, whose modules are named ``layers.conv``, ``layers.mixed_4.tower_1.
  conv_2`` ..., ``output`` (the names a public port of that file loads; see docs). torchvision's
  ImageNet Inception-v3 (``inception_v3_google-*.pth``: AuxLogits, 1000 classes) is refused: it
  is not the FID network and gives other numbers.
* VGG16: torchvision's ``vgg16-397923af.pth`` (``features.N`` / ``classifier.N``) and NVIDIA's
  TorchScript ``vgg16.pt`` (``layers.conv1..conv13``, ``layers.fc1..fc3``, LPIPS weights
  ``lpips0..lpips4``); LPIPS weights from the lpips package's ``weights/v0.1/vgg.pth``.

Both detectors run a ``tf.function`` with a batch- and size-agnostic signature, so repeated calls
trace once. Under a ``tf.distribute.Strategy`` call them inside ``strategy.run``: each replica
runs the whole network on its part of the batch (build them inside ``strategy.scope()`` to get
one mirrored copy of the weights per device; built outside, every replica reads the one copy).
"""

from __future__ import annotations

import os
import zipfile
from typing import Dict, Mapping, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from tf_stylegan2.fileio import UserError
from tf_stylegan2.metrics import inception as inception_net
from tf_stylegan2.metrics import lpips as lpips_net
from tf_stylegan2.metrics import preprocess
from tf_stylegan2.metrics import vgg16 as vgg16_net
from tf_stylegan2.official import safe_unpickle

INCEPTION_NETWORK = "inception-2015-12-05"
VGG16_NETWORK = "vgg16"
LPIPS_NETWORK = "lpips-v0.1-vgg"
LPIPS_MIN_SIZE = 16

# Files recognised by their sha256 (all public; the 8-hex suffix of a torch hub file name is the
# start of its sha256).
KNOWN_FILES: Dict[str, str] = {
    # github.com/mseitzer/pytorch-fid releases (fid_weights); the same bytes as torch-fidelity's
    # v0.2.0 release asset weights-inception-2015-12-05-6726825d.pth.
    "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2": "pt_inception-2015-12-05-6726825d.pth",
    # nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/
    "f58cb9b6ec323ed63459aa4fb441fe750cfe39fafad6da5cb504a16f19e958f4": "inception-2015-12-05.pt",
    "b437eb095feaeb0b83eb3fa11200ebca4548ee39a07fb944a417ddc516cc07c3": "vgg16.pt",
    # download.pytorch.org/models/
    "397923af8e79cdbb6a7127f12361acd7a2f83e06b05044ddf496e83de57a5bf0": "vgg16-397923af.pth",
    # lpips 0.1.4 on PyPI: lpips/weights/v0.1/vgg.pth
    "a78928a0af1e5f0fcb1f3b9e8f8c3a2a5a3de244d830ad5c1feddc79b8432868": "lpips/weights/v0.1/vgg.pth",
}

INCEPTION_FILES = ("pt_inception-2015-12-05-6726825d.pth (pytorch-fid / torch-fidelity) "
                   "or NVIDIA's inception-2015-12-05.pt")
VGG16_FILES = "torchvision's vgg16-397923af.pth or NVIDIA's vgg16.pt"
LPIPS_FILES = "the lpips package's weights/v0.1/vgg.pth (or NVIDIA's vgg16.pt, which holds them)"

Identity = Dict[str, str]


# ---------------------------------------------------------------------------------------------
# Detectors


class InceptionDetector:
    """The FID Inception-v3 on uint8 images.

    ``detector(images)``: ``[N, H, W, 3 or 1]`` uint8 (any size; resized to 299x299 with TF1's
    bilinear rule) -> ``{"pool3": [N, 2048], "logits": [N, 1008]}`` float32 tensors (logits
    without the output bias). ``identity``: network, file, sha256, format (+ ``known_as``).
    """

    def __init__(self, model: inception_net.InceptionV3, identity: Identity):
        self.model = model
        self.identity = dict(identity)
        self._run = tf.function(
            self._forward, input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8)]
        )

    def __call__(self, images) -> Dict[str, tf.Tensor]:
        return self._run(_uint8_rgb(images))

    def _forward(self, images: tf.Tensor) -> Dict[str, tf.Tensor]:
        return self.model(preprocess.inception_input(images))


class VGG16Detector:
    """VGG16 fc2 features and the LPIPS distance.

    ``features(images)``: ``[N, H, W, 3 or 1]`` uint8, resized to 224x224 (TF1 bilinear) ->
    ``[N, 4096]`` float32 (fc2 after ReLU). ``lpips(a, b)``: two ``[N, H, W, 3 or 1]`` float
    images in [-1, 1] of the same shape, compared at their own size -> ``[N]`` float32.
    ``identity``: network, file, sha256, format (+ ``known_as``), and ``lpips_file``,
    ``lpips_sha256``, ``lpips_format`` (+ ``lpips_known_as``) when LPIPS weights are loaded.
    """

    def __init__(self, model: vgg16_net.VGG16, identity: Identity, head: Optional[lpips_net.LPIPSHead] = None):
        self.model = model
        self.head = head
        self.identity = dict(identity)
        self._features = tf.function(
            self._features_fn, input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8)]
        )
        spec = tf.TensorSpec([None, None, None, 3], tf.float32)
        self._lpips = tf.function(self._lpips_fn, input_signature=[spec, spec])

    def features(self, images) -> tf.Tensor:
        return self._features(_uint8_rgb(images))

    def lpips(self, a, b) -> tf.Tensor:
        if self.head is None:
            raise UserError(f"no LPIPS weights loaded: pass lpips_path ({LPIPS_FILES})")
        a, b = (preprocess.to_rgb(tf.cast(x, tf.float32)) for x in (a, b))
        if a.shape != b.shape:
            raise ValueError(f"lpips: the two batches differ in shape, {a.shape.as_list()} vs {b.shape.as_list()}")
        if any(s is not None and s < LPIPS_MIN_SIZE for s in a.shape[1:3]):
            # relu5_3 comes after four 2x poolings: smaller images leave it empty.
            raise ValueError(f"lpips: images must be at least {LPIPS_MIN_SIZE}x{LPIPS_MIN_SIZE}, got {a.shape.as_list()}")
        return self._lpips(a, b)

    def lpips_features(self, images) -> tf.Tensor:
        """``[N, D]`` float32 vectors of float images in [-1, 1] (``[N, H, W, 3 or 1]``) whose
        squared Euclidean distances are LPIPS distances (``LPIPSHead.features``). No tf.function
        of its own: the projector traces it into its optimisation step and differentiates it."""
        if self.head is None:
            raise UserError(f"no LPIPS weights loaded: pass lpips_path ({LPIPS_FILES})")
        x = preprocess.to_rgb(tf.cast(images, tf.float32))
        if any(s is not None and s < LPIPS_MIN_SIZE for s in x.shape[1:3]):
            raise ValueError(f"lpips: images must be at least {LPIPS_MIN_SIZE}x{LPIPS_MIN_SIZE}, "
                             f"got {x.shape.as_list()}")
        return self.head.features(self.model.stages(preprocess.lpips_input(x)))

    def _features_fn(self, images: tf.Tensor) -> tf.Tensor:
        return self.model(preprocess.vgg16_input(images))

    def _lpips_fn(self, a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
        # One trunk pass over both batches.
        n = tf.shape(a)[0]
        stages = self.model.stages(preprocess.lpips_input(tf.concat([a, b], axis=0)))
        return self.head([s[:n] for s in stages], [s[n:] for s in stages])


def _uint8_rgb(images) -> tf.Tensor:
    images = tf.convert_to_tensor(images)
    if images.dtype != tf.uint8:
        raise TypeError(f"expected uint8 images, got {images.dtype.name} (see preprocess.float_to_uint8)")
    return preprocess.to_rgb(images)


# ---------------------------------------------------------------------------------------------
# Building from state dicts (numpy arrays keyed as torch's state_dict() names them)


def build_inception(tensors: Mapping[str, np.ndarray], identity: Identity) -> InceptionDetector:
    """An :class:`InceptionDetector` from the tensors of an accepted Inception file; ``identity``
    names the file in error messages (``identity["file"]``)."""
    source = identity.get("file", "weights")
    nvidia = _inception_naming(tensors, source) == "nvidia"
    model = inception_net.InceptionV3()
    inception_net.load_torch_weights(model, _inception_state(tensors, nvidia, model, source), source)
    return InceptionDetector(model, identity)


def build_vgg16(
    tensors: Mapping[str, np.ndarray],
    identity: Identity,
    lpips_tensors: Optional[Mapping[str, np.ndarray]] = None,
) -> VGG16Detector:
    """A :class:`VGG16Detector` from the tensors of an accepted VGG16 file, plus LPIPS weights from
    ``lpips_tensors`` (an lpips package file) or from the VGG16 file itself (NVIDIA's)."""
    source = identity.get("file", "weights")
    state, lins = _vgg16_state(tensors, source)
    lpips_source = identity.get("lpips_file", source)
    if lpips_tensors is not None:
        lins = lpips_net.lpips_package_lins(lpips_tensors, lpips_source)
    head = None
    if lins is not None:
        head = lpips_net.LPIPSHead()
        lpips_net.load_weights(head, lins, lpips_source)
    model = vgg16_net.VGG16()
    vgg16_net.load_torch_weights(model, state, source)
    return VGG16Detector(model, identity, head)


# NVIDIA's TorchScript Inception: module names per block type, in torchvision's unit order.
_NVIDIA_STEM = {"Conv2d_1a_3x3": "conv", "Conv2d_2a_3x3": "conv_1", "Conv2d_2b_3x3": "conv_2",
                "Conv2d_3b_1x1": "conv_3", "Conv2d_4a_3x3": "conv_4"}
_NVIDIA_UNITS = {
    "A": {"branch1x1": "conv", "branch5x5_1": "tower.conv", "branch5x5_2": "tower.conv_1",
          "branch3x3dbl_1": "tower_1.conv", "branch3x3dbl_2": "tower_1.conv_1",
          "branch3x3dbl_3": "tower_1.conv_2", "branch_pool": "tower_2.conv"},
    "B": {"branch3x3": "conv", "branch3x3dbl_1": "tower.conv", "branch3x3dbl_2": "tower.conv_1",
          "branch3x3dbl_3": "tower.conv_2"},
    "C": {"branch1x1": "conv", "branch7x7_1": "tower.conv", "branch7x7_2": "tower.conv_1",
          "branch7x7_3": "tower.conv_2", "branch7x7dbl_1": "tower_1.conv",
          "branch7x7dbl_2": "tower_1.conv_1", "branch7x7dbl_3": "tower_1.conv_2",
          "branch7x7dbl_4": "tower_1.conv_3", "branch7x7dbl_5": "tower_1.conv_4",
          "branch_pool": "tower_2.conv"},
    "D": {"branch3x3_1": "tower.conv", "branch3x3_2": "tower.conv_1", "branch7x7x3_1": "tower_1.conv",
          "branch7x7x3_2": "tower_1.conv_1", "branch7x7x3_3": "tower_1.conv_2",
          "branch7x7x3_4": "tower_1.conv_3"},
    "E": {"branch1x1": "conv", "branch3x3_1": "tower_conv", "branch3x3_2a": "tower_mixed_conv",
          "branch3x3_2b": "tower_mixed_conv_1", "branch3x3dbl_1": "tower_1_conv",
          "branch3x3dbl_2": "tower_1_conv_1", "branch3x3dbl_3a": "tower_1_mixed_conv",
          "branch3x3dbl_3b": "tower_1_mixed_conv_1", "branch_pool": "tower_2_conv"},
}
_NVIDIA_BLOCKS = {"Mixed_5b": ("mixed", "A"), "Mixed_5c": ("mixed_1", "A"), "Mixed_5d": ("mixed_2", "A"),
                  "Mixed_6a": ("mixed_3", "B"), "Mixed_6b": ("mixed_4", "C"), "Mixed_6c": ("mixed_5", "C"),
                  "Mixed_6d": ("mixed_6", "C"), "Mixed_6e": ("mixed_7", "C"), "Mixed_7a": ("mixed_8", "D"),
                  "Mixed_7b": ("mixed_9", "E"), "Mixed_7c": ("mixed_10", "E")}


def nvidia_inception_key(key: str) -> str:
    """pytorch-fid's name of an Inception tensor -> its name in NVIDIA's inception-2015-12-05.pt,
    e.g. ``Mixed_6b.branch7x7dbl_3.bn.running_var -> layers.mixed_4.tower_1.conv_2.bn.running_var``."""
    if key.startswith("fc."):
        return "output." + key[3:]
    parts = key.split(".")
    if parts[0] in _NVIDIA_STEM:
        return ".".join(["layers", _NVIDIA_STEM[parts[0]], *parts[1:]])
    block, kind = _NVIDIA_BLOCKS[parts[0]]
    return ".".join(["layers", block, _NVIDIA_UNITS[kind][parts[1]], *parts[2:]])


def _inception_naming(tensors: Mapping[str, np.ndarray], source: str) -> str:
    """"torchvision" (pytorch-fid's file) or "nvidia" (inception-2015-12-05.pt); refuses others."""
    keys = set(tensors)
    fc = tensors.get("fc.weight")
    if any(k.startswith("AuxLogits.") for k in keys) or (fc is not None and np.shape(fc)[0] == 1000):
        raise UserError(
            f"{source} is torchvision's ImageNet Inception-v3 (AuxLogits, 1000 classes), not the FID "
            f"network {INCEPTION_NETWORK}: its features give other numbers; use {INCEPTION_FILES}"
        )
    if "Conv2d_1a_3x3.conv.weight" in keys:
        return "torchvision"
    if "layers.conv.conv.weight" in keys:
        return "nvidia"
    raise UserError(f"{source}: {_describe(keys)}, not an Inception-v3 weights file; use {INCEPTION_FILES}")


def _inception_state(
    tensors: Mapping[str, np.ndarray], nvidia: bool, model: inception_net.InceptionV3, source: str
) -> Mapping[str, np.ndarray]:
    """The tensors in pytorch-fid's names."""
    names = inception_net.expected_shapes(model)
    if not nvidia:
        expected = set(names) | {"fc.bias"}
        unexpected = sorted(k for k in set(tensors) - expected if not k.endswith(".num_batches_tracked"))
        if unexpected:
            raise UserError(f"{source}: unexpected tensor {unexpected[0]} ({len(unexpected)} in all): "
                            f"not the FID Inception-v3; use {INCEPTION_FILES}")
        return tensors
    state = {}
    for key in names:
        theirs = nvidia_inception_key(key)
        if theirs in tensors:
            state[key] = tensors[theirs]
        elif not key.endswith(".bn.weight"):  # the 2015 graph's BN has no scale
            raise UserError(f"{source}: missing tensor {theirs} (not NVIDIA's {INCEPTION_NETWORK}.pt)")
    return state


def _vgg16_state(tensors: Mapping[str, np.ndarray], source: str) -> Tuple[Mapping[str, np.ndarray], Optional[list]]:
    """(tensors in torchvision's names, LPIPS weights the file holds or None)."""
    keys = set(tensors)
    if "features.0.weight" in keys:
        if any(k.startswith("features.") and k.endswith(".running_mean") for k in keys):
            raise UserError(f"{source} is a VGG with batch norm (vgg*_bn), not VGG16; use {VGG16_FILES}")
        convs = sorted(int(k.split(".")[1]) for k in keys if k.startswith("features.") and k.endswith(".weight"))
        if convs != vgg16_net.torchvision_conv_indices():
            what = "a VGG19 (16 conv layers)" if len(convs) == 16 else f"a network with {len(convs)} conv layers"
            raise UserError(f"{source} is {what}, not VGG16 (13 conv layers); use {VGG16_FILES}")
        return tensors, None
    if "layers.conv1.weight" in keys:
        if "layers.conv14.weight" in keys:
            raise UserError(f"{source} has more than 13 conv layers: not NVIDIA's vgg16.pt; use {VGG16_FILES}")
        state = {}
        for k, index in enumerate(vgg16_net.torchvision_conv_indices()):
            for p in ("weight", "bias"):
                state[f"features.{index}.{p}"] = _require(tensors, f"layers.conv{k + 1}.{p}", source)
        for fc, index in (("fc1", 0), ("fc2", 3)):
            for p in ("weight", "bias"):
                state[f"classifier.{index}.{p}"] = _require(tensors, f"layers.{fc}.{p}", source)
        lins = None
        if "lpips0" in keys:
            lins = [_require(tensors, f"lpips{k}", source) for k in range(len(lpips_net.CHANNELS))]
        return state, lins
    if "lin0.model.1.weight" in keys:
        raise UserError(f"{source} holds only LPIPS's linear layers: pass it as lpips_path and "
                        f"{VGG16_FILES} as the VGG16 weights")
    raise UserError(f"{source}: {_describe(keys)}, not a VGG16 weights file; use {VGG16_FILES}")


def _require(tensors: Mapping[str, np.ndarray], key: str, source: str) -> np.ndarray:
    if key not in tensors:
        raise UserError(f"{source}: missing tensor {key} (not NVIDIA's vgg16.pt)")
    return tensors[key]


def _describe(keys) -> str:
    if "Conv2d_1a_3x3.conv.weight" in keys or "layers.conv.conv.weight" in keys:
        return "an Inception network"
    if "features.0.weight" in keys or "layers.conv1.weight" in keys:
        return "a VGG network"
    if "lin0.model.1.weight" in keys:
        return "LPIPS's linear layers"
    sample = ", ".join(sorted(keys)[:3])
    return f"unknown tensors ({sample}{', ...' if len(keys) > 3 else ''})" if keys else "no tensors"


# ---------------------------------------------------------------------------------------------
# Files


def load_inception(path: str) -> InceptionDetector:
    """The FID Inception-v3 from ``pt_inception-2015-12-05-6726825d.pth`` (either torch.save
    format) or NVIDIA's ``inception-2015-12-05.pt``; anything else is a one-line UserError."""
    tensors, identity = _read(path, INCEPTION_NETWORK, "Inception", INCEPTION_FILES)
    return build_inception(tensors, identity)


def load_vgg16(path: str, lpips_path: Optional[str] = None) -> VGG16Detector:
    """VGG16 (+ LPIPS) from torchvision's ``vgg16-397923af.pth`` or NVIDIA's ``vgg16.pt``, LPIPS
    weights from ``lpips_path`` (the lpips package's ``weights/v0.1/vgg.pth``) or, for NVIDIA's
    file, from the file itself. Without either, ``lpips()`` raises a UserError."""
    tensors, identity = _read(path, VGG16_NETWORK, "VGG16", VGG16_FILES)
    lpips_tensors = None
    if lpips_path is not None:
        lpips_tensors, lpips_identity = _read(lpips_path, LPIPS_NETWORK, "LPIPS", LPIPS_FILES)
        identity.update({f"lpips_{k}": v for k, v in lpips_identity.items() if k != "network"})
    elif "lpips0" in tensors:
        identity.update({f"lpips_{k}": v for k, v in identity.items() if k != "network"})
    return build_vgg16(tensors, identity, lpips_tensors)


def _read(path: str, network: str, what: str, accepted: str) -> Tuple[Mapping[str, np.ndarray], Identity]:
    if not os.path.isfile(path):
        raise UserError(f"{what} weights {path}: no such file (expected {accepted})")
    if _is_keras_archive(path):
        raise UserError(f"{path} is a Keras model, not {what} weights; expected {accepted}")
    try:
        torch_file = safe_unpickle.load_torch(path)
    except UserError as e:
        raise UserError(f"cannot read {what} weights {path}: {e}") from None
    identity = {"network": network, "file": os.path.basename(path), "sha256": torch_file.sha256,
                "format": torch_file.format}
    if torch_file.sha256 in KNOWN_FILES:
        identity["known_as"] = KNOWN_FILES[torch_file.sha256]
    return torch_file.tensors, identity


def _is_keras_archive(path: str) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    try:
        with zipfile.ZipFile(path) as z:
            names = set(z.namelist())
    except (zipfile.BadZipFile, OSError):
        return False
    return "config.json" in names and ("model.weights.h5" in names or "metadata.json" in names)


__all__: Sequence[str] = (
    "InceptionDetector",
    "KNOWN_FILES",
    "VGG16Detector",
    "build_inception",
    "build_vgg16",
    "load_inception",
    "load_vgg16",
    "nvidia_inception_key",
)
