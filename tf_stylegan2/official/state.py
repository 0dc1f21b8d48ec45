"""Official weights in one interchange form, and loading them into our Keras networks.

Both importers (TF1, stylegan2-ada-pytorch) produce a :class:`NetworkState`: one of our config
dataclasses plus the weights as numpy arrays named and laid out as in stylegan2-ada-pytorch's
``state_dict`` (``synthesis.b8.conv0.weight`` as ``[out, in, kh, kw]``, dense weights as
``[out, in]``). This module alone knows how those map onto our layers:

* dense ``[out, in]`` -> ``[in, out]``; conv ``[out, in, kh, kw]`` -> ``[kh, kw, in, out]``;
* the 4x4 constant ``[C, 4, 4]`` -> ``[4, 4, C]``;
* the discriminator epilogue's fc flattens ``[C, 4, 4]`` (NCHW) in torch and ``[4, 4, C]`` (NHWC)
  here, so its input rows are permuted;
* ``resample_filter`` buffers are not weights here (the config's filter); they are checked.

Every one of our variables must receive exactly one official tensor of the right shape and every
official tensor must be used, so a structural mismatch is an error, never a silently random layer.
Before anything is built, the config is checked field by field (:func:`.options.checked_config`)
and its :func:`parameter_count` against the values the file holds, so options that describe a
network far larger than the file never allocate it.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Dict, List, Optional, Tuple, Union

import keras
import numpy as np

from custom_ops import setup_filter
from layers.equalized import EqualizedConv2D, EqualizedDense
from layers.mapping import MappingNetwork
from layers.rules import channels, resolution_log2
from layers.synthesis import SynthesisLayer
from layers.to_rgb import ToRGB
from tf_stylegan2.config import DiscriminatorConfig, GeneratorConfig
from tf_stylegan2.fileio import UserError
from tf_stylegan2.networks import Discriminator, Generator
from tf_stylegan2.official.options import checked_config

Config = Union[GeneratorConfig, DiscriminatorConfig]


@dataclasses.dataclass
class NetworkState:
    """A network read from an official pickle: our config + ada-layout numpy weights."""

    name: str  # 'G', 'G_ema' or 'D'
    config: Config
    tensors: Dict[str, np.ndarray]

    def __post_init__(self) -> None:
        self.config = checked_config(self.config, self.name)
        for name, value in self.tensors.items():
            if not isinstance(value, np.ndarray) or value.dtype.kind != "f":
                kind = value.dtype if isinstance(value, np.ndarray) else type(value).__name__
                raise UserError(f"{self.name}: official weight {name!r} is {kind}, not a floating-point tensor")

    def build(self) -> keras.Model:
        """Builds our Generator / Discriminator (float32) holding these weights."""
        # A network its weights cannot fill is refused before it is allocated; near misses are left to
        # the weight-by-weight check below, which names the tensor.
        needed = parameter_count(self.config)
        held = sum(t.size for name, t in self.tensors.items() if not name.endswith("resample_filter"))
        if needed > 2 * held + (1 << 20):
            raise UserError(f"{self.name}: its options describe a network of {needed:,} values, but the file holds "
                            f"only {held:,} for it")
        if isinstance(self.config, GeneratorConfig):
            model = Generator(self.config, name=self.name)
            pairs = _generator_pairs(model)
        else:
            model = Discriminator(self.config, name=self.name)
            pairs = _discriminator_pairs(model)
        _assign(model, pairs, self.tensors, self.config.resample_filter, self.name)
        return model


def _mapping_count(z_dim: int, c_dim: int, w_dim: int, m, w_avg: bool) -> int:
    embed = (m.embed_features or w_dim) if c_dim else 0
    features = [z_dim + embed] + [m.layer_features or w_dim] * (m.num_layers - 1) + [w_dim] if m.num_layers else []
    count = (c_dim + 1) * embed + sum((a + 1) * b for a, b in zip(features, features[1:]))
    return count + (w_dim if w_avg else 0)


def parameter_count(config: Config) -> int:
    """How many values our network for ``config`` holds (weights and buffers, as the official
    tensors other than ``resample_filter``), without building it."""
    log2 = resolution_log2(config.img_resolution)
    ch = lambda r: channels(r, config.channel_base, config.channel_max)  # noqa: E731
    if isinstance(config, GeneratorConfig):
        w, img = config.w_dim, config.img_channels

        def modulated(cin: int, cout: int, k: int, r: int = 0) -> int:  # affine + weight + bias (+ noise)
            return (w + 1) * cin + cin * cout * k * k + cout + ((1 + r * r) if r and config.use_noise else 0)

        count = _mapping_count(config.z_dim, config.c_dim, w, config.mapping, config.mapping.w_avg_beta is not None)
        const = config.const_channels or ch(4)
        count += const * 16 + modulated(const, ch(4), 3, 4)
        for k in range(2, log2 + 1):
            r = 2**k
            if k > 2:
                count += modulated(ch(r // 2), ch(r), 3, r) + modulated(ch(r), ch(r), 3, r)
                count += ch(r // 2) * ch(r) if config.architecture == "resnet" else 0
            if config.architecture == "skip" or k == log2:
                count += modulated(ch(r), img, 1)
        return count
    img, skip = config.img_channels, config.architecture == "skip"
    count = 0
    for k in range(log2, 2, -1):
        r = 2**k
        count += (img + 1) * ch(r) if skip or k == log2 else 0
        count += (9 * ch(r) + 1) * ch(r) + (9 * ch(r) + 1) * ch(r // 2)
        count += ch(r) * ch(r // 2) if config.architecture == "resnet" else 0
    cmap = (config.cmap_dim or ch(4)) if config.c_dim else 0
    count += _mapping_count(0, config.c_dim, cmap, config.mapping, False) if config.c_dim else 0
    count += (img + 1) * ch(4) if skip or log2 == 2 else 0
    count += (9 * (ch(4) + config.mbstd_num_channels) + 1) * ch(4) + (16 * ch(4) + 1) * ch(4)
    return count + (ch(4) + 1) * (cmap or 1)


def _dense(a: np.ndarray) -> np.ndarray:
    return a.T


def _conv(a: np.ndarray) -> np.ndarray:
    return a.transpose(2, 3, 1, 0)


def _same(a: np.ndarray) -> np.ndarray:
    return a


Pair = Tuple[str, keras.Variable, Callable[[np.ndarray], np.ndarray]]


def _dense_pairs(prefix: str, layer: EqualizedDense) -> List[Pair]:
    pairs = [(f"{prefix}.weight", layer.weight, _dense)]
    if layer.bias is not None:
        pairs.append((f"{prefix}.bias", layer.bias, _same))
    return pairs


def _conv_pairs(prefix: str, layer: Optional[EqualizedConv2D]) -> List[Pair]:
    if layer is None:
        return []
    pairs = [(f"{prefix}.weight", layer.weight, _conv)]
    if layer.bias is not None:
        pairs.append((f"{prefix}.bias", layer.bias, _same))
    return pairs


def _mapping_pairs(prefix: str, mapping: Optional[MappingNetwork]) -> List[Pair]:
    if mapping is None:
        return []
    pairs = _dense_pairs(f"{prefix}.embed", mapping.embed) if mapping.embed is not None else []
    for i, fc in enumerate(mapping.fcs):
        pairs += _dense_pairs(f"{prefix}.fc{i}", fc)
    if mapping.w_avg is not None:
        pairs.append((f"{prefix}.w_avg", mapping.w_avg, _same))
    return pairs


def _modulated_pairs(prefix: str, layer: Union[SynthesisLayer, ToRGB]) -> List[Pair]:
    pairs = _dense_pairs(f"{prefix}.affine", layer.conv.affine)
    pairs += [(f"{prefix}.weight", layer.conv.weight, _conv), (f"{prefix}.bias", layer.bias, _same)]
    noise = getattr(layer, "noise", None)
    if noise is not None:
        pairs += [(f"{prefix}.noise_strength", noise.noise_strength, _same), (f"{prefix}.noise_const", noise.noise_const, _same)]
    return pairs


def _generator_pairs(G: Generator) -> List[Pair]:
    pairs = _mapping_pairs("mapping", G.mapping)
    for block in G.synthesis.blocks:
        p = f"synthesis.b{block.resolution}"
        if block.const is not None:
            pairs.append((f"{p}.const", block.const, lambda a: a.transpose(1, 2, 0)))
        for name in ("conv0", "conv1", "torgb"):
            if getattr(block, name) is not None:
                pairs += _modulated_pairs(f"{p}.{name}", getattr(block, name))
        pairs += _conv_pairs(f"{p}.skip", block.skip)
    return pairs


def _discriminator_pairs(D: Discriminator) -> List[Pair]:
    pairs = []
    for block in D.blocks:
        for name in ("fromrgb", "conv0", "conv1", "skip"):
            pairs += _conv_pairs(f"b{block.resolution}.{name}", getattr(block, name))
    pairs += _mapping_pairs("mapping", D.mapping)
    e = D.epilogue
    pairs += _conv_pairs("b4.fromrgb", e.fromrgb) + _conv_pairs("b4.conv", e.conv)
    c, r = e.in_channels, e.resolution

    def nchw_to_nhwc_rows(a: np.ndarray) -> np.ndarray:  # [out, C*r*r] (c, h, w order) -> [r*r*C, out] (h, w, c)
        return a.reshape(a.shape[0], c, r, r).transpose(2, 3, 1, 0).reshape(r * r * c, a.shape[0])

    pairs += [("b4.fc.weight", e.fc.weight, nchw_to_nhwc_rows), ("b4.fc.bias", e.fc.bias, _same)]
    return pairs + _dense_pairs("b4.out", e.out)


def _assign(
    model: keras.Model, pairs: List[Pair], tensors: Dict[str, np.ndarray], resample_filter, what: str
) -> None:
    covered = {id(v) for _, v, _ in pairs}
    missing_here = [v.path for v in model.weights if id(v) not in covered]
    if missing_here or len(covered) != len(pairs):  # a bug in the tables above, not bad input
        raise RuntimeError(f"{what}: importer does not cover variables {missing_here}")
    expected_filter = setup_filter(resample_filter)
    used = set()
    values = []
    for name, variable, transform in pairs:
        if name not in tensors:
            raise UserError(f"{what}: the official network has no weight {name!r} that this configuration needs")
        value = np.asarray(tensors[name], dtype=np.float64)
        if not np.all(np.isfinite(value)):
            raise UserError(f"{what}: official weight {name!r} holds NaN or infinite values")
        try:
            value = transform(value)
        except (ValueError, IndexError):  # a reshape or transpose that does not fit the rank
            value = None
        if value is None or tuple(value.shape) != tuple(variable.shape):
            raise UserError(
                f"{what}: official weight {name!r} has shape {list(tensors[name].shape)}, which does not fit "
                f"the network its options describe"
            )
        used.add(name)
        values.append((variable, value.astype(np.float32)))
    for name in sorted(set(tensors) - used):
        if name.endswith("resample_filter"):
            if tensors[name].shape != expected_filter.shape or not np.allclose(tensors[name], expected_filter, atol=1e-6):
                raise UserError(f"{what}: {name!r} does not match the resample filter {list(resample_filter)}")
            continue
        raise UserError(f"{what}: the official network has a weight {name!r} that this importer does not know")
    for variable, value in values:
        variable.assign(value)
