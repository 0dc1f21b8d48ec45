"""stylegan2-ada-pytorch network pickles (``network-snapshot-*.pkl``) -> :class:`NetworkState`.

Such a pickle is a dict with ``G``, ``D``, ``G_ema`` (and ``training_set_kwargs``,
``augment_pipe``): ``torch.nn.Module`` objects stored through ``torch_utils.persistence``, which the
restricted unpickler returns as :class:`PersistentObject` (class name + module state, source never
run). The configuration comes from the constructor arguments each object records
(``_init_kwargs``), checked option by option against what our networks implement; the weights are
the modules' parameters and persistent buffers, already in the interchange layout of
:mod:`tf_stylegan2.official.state`, which checks every option's type and range
(:func:`.options.checked_config`) and every tensor's shape before anything is built.
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, Tuple

import numpy as np

from tf_stylegan2.config import DiscriminatorConfig, GeneratorConfig, MappingConfig
from tf_stylegan2.fileio import UserError
from tf_stylegan2.official import options
from tf_stylegan2.official.safe_unpickle import PersistentObject
from tf_stylegan2.official.state import NetworkState

FORMAT = "stylegan2-ada-pytorch"

# Defaults of stylegan2-ada-pytorch's constructors (training/networks.py), for options a pickle omits.
_G_MAPPING = dict(num_layers=8, embed_features=None, layer_features=None, activation="lrelu", lr_multiplier=0.01,
                  w_avg_beta=0.995)
_G_SYNTHESIS = dict(channel_base=32768, channel_max=512, num_fp16_res=0, conv_clamp=None, architecture="skip",
                    resample_filter=[1, 3, 3, 1], use_noise=True, activation="lrelu", kernel_size=3)
_D_TOP = dict(architecture="resnet", channel_base=32768, channel_max=512, num_fp16_res=0, conv_clamp=None, cmap_dim=None)
_D_BLOCK = dict(activation="lrelu", resample_filter=[1, 3, 3, 1])
_D_MAPPING = dict(num_layers=8, embed_features=None, layer_features=None, activation="lrelu", lr_multiplier=0.01)
_D_EPILOGUE = dict(mbstd_group_size=4, mbstd_num_channels=1, activation="lrelu")
# Options that change memory layout or training only, not what the network computes.
_NO_EFFECT = {"fp16_channels_last", "freeze_layers"}
# More modules than any network has (config F: ~400); bounds the walk of a crafted module graph.
_MAX_MODULES = 100_000


def is_ada_pickle(data: Any) -> bool:
    return isinstance(data, dict) and any(isinstance(data.get(k), PersistentObject) for k in ("G", "D", "G_ema"))


def read_ada(data: Dict[str, Any]) -> Dict[str, NetworkState]:
    """``{'G': ..., 'D': ..., 'G_ema': ...}`` from an unpickled stylegan2-ada-pytorch snapshot.

    G_ema is required; G and D are read when present (some shared pickles keep only G_ema).
    """
    networks = {}
    for key, expected in (("G", "Generator"), ("D", "Discriminator"), ("G_ema", "Generator")):
        obj = data.get(key)
        if obj is None and key != "G_ema":
            continue
        if not isinstance(obj, PersistentObject):
            raise UserError(f"the pickle has no stylegan2-ada-pytorch network '{key}'")
        if "class SynthesisInput" in obj.module_src:
            raise UserError(f"'{key}' is a StyleGAN3 network; only StyleGAN2 networks can be imported")
        if obj.class_name != expected:
            shown = " ".join(obj.class_name[:80].split())
            raise UserError(f"'{key}' is a {shown}, expected stylegan2-ada-pytorch's {expected}")
        if obj.state.get("_init_args"):
            raise UserError(f"'{key}' was constructed with positional arguments; expected keyword arguments only")
        kwargs = obj.state.get("_init_kwargs")
        if not isinstance(kwargs, dict):
            raise UserError(f"'{key}' does not record its constructor arguments (_init_kwargs)")
        config = _generator_config(kwargs, key) if expected == "Generator" else _discriminator_config(kwargs, key)
        networks[key] = NetworkState(key, config, module_tensors(obj, key))
    return networks


def module_tensors(root: PersistentObject, what: str) -> Dict[str, np.ndarray]:
    """Parameters and persistent buffers of a module tree, named as in ``state_dict()``."""
    tensors: Dict[str, np.ndarray] = {}
    visited = [0]

    def walk(obj: PersistentObject, prefix: str, path: Tuple[int, ...]) -> None:
        here = prefix[:-1] or obj.class_name[:80]
        visited[0] += 1
        if id(obj) in path or visited[0] > _MAX_MODULES:
            raise UserError(f"{what}: module {here!r} contains itself, or the tree has more than {_MAX_MODULES} "
                            "modules (a crafted file)")
        state = obj.state
        non_persistent = state.get("_non_persistent_buffers_set") or set()
        if not isinstance(non_persistent, (set, frozenset, list, tuple)):
            raise UserError(f"{what}: module {here!r} has a malformed _non_persistent_buffers_set")
        for group in ("_parameters", "_buffers", "_modules"):
            entries = state.get(group)
            if not isinstance(entries, dict) or not all(isinstance(name, str) for name in entries):
                raise UserError(f"{what}: module {here!r} has no {group} by name (not a torch module)")
            for name, value in entries.items():
                if value is None or (group == "_buffers" and name in non_persistent):
                    continue
                if group == "_modules":
                    if not isinstance(value, PersistentObject):
                        raise UserError(f"{what}: submodule {prefix + name!r} is not a stylegan2-ada-pytorch module")
                    walk(value, f"{prefix}{name}.", path + (id(obj),))
                elif not isinstance(value, np.ndarray):
                    raise UserError(f"{what}: {prefix + name!r} is a {type(value).__name__}, not a tensor")
                else:
                    tensors[prefix + name] = value

    walk(root, "", ())
    return tensors


def _options(given: Any, defaults: Dict[str, Any], what: str, required: Iterable[str] = ()) -> Dict[str, Any]:
    """Merges ``given`` over ``defaults``; unknown options (other than no-effect ones) are an error."""
    given = {} if given is None else given
    if not isinstance(given, dict) or not all(isinstance(k, str) for k in given):
        raise UserError(f"{what} must be a dict of options by name, got {type(given).__name__}")
    for name in required:
        if name not in given:
            raise UserError(f"{what} lacks '{name}'")
    unknown = sorted(set(given) - set(defaults) - set(required) - _NO_EFFECT)
    if unknown:
        raise UserError(f"{what}: option {unknown[0]!r} is not supported by this importer")
    return {**defaults, **{k: v for k, v in given.items() if k not in _NO_EFFECT}}


def _generator_config(kwargs: Dict[str, Any], what: str) -> GeneratorConfig:
    top = _options(
        kwargs, {"mapping_kwargs": None, "synthesis_kwargs": None}, f"{what} options",
        required=("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels"),
    )
    m = _options(top["mapping_kwargs"], _G_MAPPING, f"{what} mapping_kwargs")
    s = _options(top["synthesis_kwargs"], _G_SYNTHESIS, f"{what} synthesis_kwargs")
    if s["kernel_size"] != 3:
        raise UserError(f"{what}: synthesis kernel_size={options.shown(s['kernel_size'])} is not supported (only 3)")
    return GeneratorConfig(
        img_resolution=top["img_resolution"], img_channels=top["img_channels"], z_dim=top["z_dim"],
        c_dim=top["c_dim"], w_dim=top["w_dim"], channel_base=s["channel_base"], channel_max=s["channel_max"],
        num_fp16_res=s["num_fp16_res"], conv_clamp=s["conv_clamp"], architecture=s["architecture"],
        resample_filter=_filter(s["resample_filter"], what), use_noise=s["use_noise"], activation=s["activation"],
        mapping=MappingConfig(**m),
    )


def _discriminator_config(kwargs: Dict[str, Any], what: str) -> DiscriminatorConfig:
    top = _options(
        kwargs, {**_D_TOP, "block_kwargs": None, "mapping_kwargs": None, "epilogue_kwargs": None},
        f"{what} options", required=("c_dim", "img_resolution", "img_channels"),
    )
    b = _options(top["block_kwargs"], _D_BLOCK, f"{what} block_kwargs")
    m = _options(top["mapping_kwargs"], _D_MAPPING, f"{what} mapping_kwargs")
    e = _options(top["epilogue_kwargs"], _D_EPILOGUE, f"{what} epilogue_kwargs")
    if b["activation"] != e["activation"]:
        raise UserError(f"{what}: different block ({options.shown(b['activation'])}) and epilogue "
                        f"({options.shown(e['activation'])}) activations "
                        "are not supported")
    return DiscriminatorConfig(
        img_resolution=top["img_resolution"], img_channels=top["img_channels"], c_dim=top["c_dim"],
        architecture=top["architecture"], channel_base=top["channel_base"], channel_max=top["channel_max"],
        num_fp16_res=top["num_fp16_res"], conv_clamp=top["conv_clamp"], cmap_dim=top["cmap_dim"],
        mbstd_group_size=e["mbstd_group_size"], mbstd_num_channels=e["mbstd_num_channels"],
        resample_filter=_filter(b["resample_filter"], what), activation=b["activation"],
        mapping=MappingConfig(**m, w_avg_beta=None),
    )


def _filter(f: Any, what: str) -> tuple:
    return options.taps(f, "resample_filter", what)
