"""StyleGAN2 TF1 network pickles (``stylegan2-*-config-*.pkl``) -> :class:`NetworkState`.

Such a pickle is a tuple ``(G, D, Gs)`` of ``dnnlib.tflib.network.Network`` states: the build
function's name and keyword arguments (``static_kwargs``), sub-networks (``components``: G's
``mapping`` and ``synthesis``) and variables by TF scope name. Only the StyleGAN2 networks of
``training/networks_stylegan2.py`` are supported: ``G_main`` with ``G_mapping`` and
``G_synthesis_stylegan2``, and ``D_stylegan2``.

How TF1's variables differ from the interchange layout (stylegan2-ada-pytorch's), and why:

* weights are ``[kh, kw, in, out]`` / ``[in, out]`` -> ``[out, in, kh, kw]`` / ``[out, in]``;
* the style bias ``mod_bias`` is applied as ``mod_bias + 1`` at run time; ada stores the sum
  (its affine layers start at bias 1);
* TF1's up-sampling convolution correlates the zero-stuffed input with the kernel, while ada's
  (and ours) convolves it (a transposed convolution): the kernel is flipped in both spatial axes;
* the per-layer constant noise inputs live in ``synthesis/noise<i>`` ``[1, 1, R, R]`` with
  ``i`` counting the convolution layers from 0 (4x4) upwards;
* ``dlatent_avg`` is ``mapping.w_avg``; the 4x4 constant drops its batch axis.
* channels: TF1 has ``min(fmap_base / 2**(log2(r) - 1), fmap_max)`` channels at resolution r, i.e.
  ``channel_base = 2 * fmap_base``; other channel rules (``fmap_decay``, ``fmap_min``) are refused.

Every option is checked for its type and range before it is used (:mod:`.options`), every
variable for its rank before it is transposed. Refused with a clear error: conditional networks
(TF1 concatenates an unnormalised, bias-free label embedding to z and normalises the two together,
and its discriminator multiplies the output by the label without a mapping network; neither has
an equivalent here), the progressive-growing and StyleGAN1 networks (configs A-D), un-normalised
latents, and unknown options.

The helpers here read any ``dnnlib`` Network pickle; :mod:`.ada_tf` uses them, with its own
:class:`Release`, for stylegan2-ada's TF networks (same state and variable scheme, more options).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Dict, FrozenSet, List, Optional, Tuple

import numpy as np

from layers.rules import check_architecture, check_resolution, resolution_log2
from tf_stylegan2.config import DiscriminatorConfig, GeneratorConfig, MappingConfig
from tf_stylegan2.fileio import UserError
from tf_stylegan2.official import options
from tf_stylegan2.official.safe_unpickle import TFNetwork
from tf_stylegan2.official.state import NetworkState

FORMAT = "StyleGAN2 TF1"


@dataclasses.dataclass(frozen=True)
class Release:
    """One of NVIDIA's TF releases that store ``dnnlib`` Networks, as the messages name it."""

    name: str  # "StyleGAN2"
    version: int  # the Network state version its dnnlib writes
    source: str  # the module of its build functions
    networks: str  # which of its networks are read


STYLEGAN2 = Release("StyleGAN2", 4, "networks_stylegan2.py", "configs E and F")

# Defaults of the build functions in networks_stylegan2.py, for options a pickle omits.
_MAPPING = dict(latent_size=512, label_size=0, dlatent_size=512, mapping_layers=8, mapping_fmaps=512,
                mapping_lrmul=0.01, mapping_nonlinearity="lrelu", normalize_latents=True)
_SYNTHESIS = dict(resolution=1024, num_channels=3, fmap_base=16 << 10, fmap_decay=1.0, fmap_min=1, fmap_max=512,
                  architecture="skip", nonlinearity="lrelu", resample_kernel=[1, 3, 3, 1])
_G_MAIN = dict(dlatent_avg_beta=0.995, mapping_func="G_mapping", synthesis_func="G_synthesis_stylegan2")
_D = dict(resolution=1024, num_channels=3, label_size=0, fmap_base=16 << 10, fmap_decay=1.0, fmap_min=1, fmap_max=512,
          architecture="resnet", nonlinearity="lrelu", mbstd_group_size=4, mbstd_num_features=1,
          resample_kernel=[1, 3, 3, 1])
# What each option must be (TF1 names); the importer computes with them only after these checks.
_width = lambda minimum=1: lambda v, n, w: options.integer(v, n, w, minimum)  # noqa: E731
_act = lambda v, n, w: options.choice(v, n, w, options.ACTIVATIONS)  # noqa: E731
_CHECKS = dict(
    latent_size=_width(), label_size=_width(0), dlatent_size=_width(), mapping_fmaps=_width(),
    mapping_layers=lambda v, n, w: options.integer(v, n, w, 1, options.MAX_LAYERS),
    mapping_lrmul=lambda v, n, w: options.real(v, n, w, 0.0, open_minimum=True),
    mapping_nonlinearity=_act, nonlinearity=_act, normalize_latents=options.flag,
    resolution=options.resolution, num_channels=_width(),
    # fmap_base enters TF1's arithmetic as a float; the decay as an exponent per stage.
    fmap_base=lambda v, n, w: options.integer(v, n, w, 1, options.MAX_WIDTH * options.MAX_RESOLUTION, allow_float=True),
    fmap_decay=lambda v, n, w: options.real(v, n, w, 0.0, 16.0), fmap_min=_width(0), fmap_max=_width(),
    resample_kernel=options.taps, mbstd_group_size=_width(0), mbstd_num_features=_width(0),
    dlatent_avg_beta=lambda v, n, w: options.optional_real(v, n, w, minimum=0.0, maximum=1.0),
)
# Run-time options (truncation, noise, evaluation mode, implementation, dtype): they do not change
# the weights' meaning and are chosen per call in our API.
_RUN_TIME = frozenset({"truncation_psi", "truncation_cutoff", "truncation_psi_val", "truncation_cutoff_val",
                       "style_mixing_prob", "is_training", "is_validation", "return_dlatents", "randomize_noise",
                       "fused_modconv", "dtype", "structure", "dlatent_broadcast"})


def is_tf1_pickle(data: Any) -> bool:
    return isinstance(data, tuple) and len(data) == 3 and all(isinstance(n, TFNetwork) for n in data)


def read_tf1(data: Tuple[TFNetwork, TFNetwork, TFNetwork]) -> Dict[str, NetworkState]:
    """``{'G': ..., 'D': ..., 'G_ema': ...}`` from an unpickled ``(G, D, Gs)`` tuple."""
    G, D, Gs = data
    return {"G": _generator(G, "G"), "D": _discriminator(D, "D"), "G_ema": _generator(Gs, "Gs")}


def _check_network(net: TFNetwork, build_func: str, what: str, release: Release = STYLEGAN2) -> Dict[str, np.ndarray]:
    """Checks the Network's version and build function; returns its own variables by name."""
    state = net.state
    if state.get("version") != release.version:
        raise UserError(f"{what}: TF1 Network pickle version {options.shown(state.get('version'))} is not supported "
                        f"({release.name} writes version {release.version})")
    if state.get("build_func_name") != build_func:
        raise UserError(f"{what}: network {options.shown(state.get('build_func_name'))} is not supported; "
                        f"only {release.name}'s {build_func} ({release.networks}) can be imported")
    if not isinstance(state.get("static_kwargs"), dict) or not all(isinstance(k, str) for k in state["static_kwargs"]):
        raise UserError(f"{what}: the Network has no static_kwargs (a dict of options by name)")
    variables = state.get("variables")
    if not isinstance(variables, list) or not all(isinstance(v, tuple) and len(v) == 2 for v in variables):
        raise UserError(f"{what}: the Network's variables are not a list of (name, value) pairs")
    out = {}
    for name, value in variables:
        if not isinstance(name, str) or not isinstance(value, (np.ndarray, np.generic)) or name in out:
            raise UserError(f"{what}: malformed variable {name!r}")
        out[name] = np.asarray(value)  # session.run returns scalar variables as numpy scalars
    return out


Check = Callable[[Any, str, str], Any]


def _options(kwargs: Dict[str, Any], defaults: Dict[str, Any], what: str, checks: Dict[str, Check] = _CHECKS,
             run_time: FrozenSet[str] = _RUN_TIME, release: Release = STYLEGAN2) -> Dict[str, Any]:
    """The options that shape the network, defaults filled in, each checked by ``checks``."""
    unknown = sorted(set(kwargs) - set(defaults) - run_time)
    if unknown:
        raise UserError(f"{what}: TF1 option {options.shown(unknown[0])} is not supported by this importer "
                        f"(only the {release.name} release's {release.source} is)")
    merged = {**defaults, **{k: v for k, v in kwargs.items() if k not in run_time}}
    return {k: checks[k](v, k, what) if k in checks else v for k, v in merged.items()}


def _channels(o: Dict[str, Any], resolutions: List[int], what: str) -> Tuple[int, int]:
    """Maps TF1's per-stage channel rule to (channel_base, channel_max), or refuses it."""
    base, fmap_max = 2 * o["fmap_base"], o["fmap_max"]
    for r in resolutions:
        stage = np.log2(r) - 1
        theirs = int(np.clip(int(o["fmap_base"] / 2.0 ** (stage * o["fmap_decay"])), o["fmap_min"], o["fmap_max"]))
        if theirs != min(base // r, fmap_max):
            raise UserError(f"{what}: fmap_base={o['fmap_base']}, fmap_decay={o['fmap_decay']}, fmap_min={o['fmap_min']}, "
                            f"fmap_max={o['fmap_max']} give {theirs} channels at {r}x{r}, which the channel rule "
                            "min(channel_base / r, channel_max) cannot express")
    return base, fmap_max


def _unconditional(o: Dict[str, Any], what: str) -> None:
    if o["label_size"]:
        raise UserError(f"{what}: conditional TF1 networks (label_size={o['label_size']}) are not supported: TF1 "
                        "conditions differently from stylegan2-ada and from this library")


def _common(o: Dict[str, Any], what: str) -> Dict[str, Any]:
    resolution = o["resolution"]
    try:
        check_resolution(resolution)
        check_architecture(o["architecture"])
    except ValueError as e:
        raise UserError(f"{what}: {e}") from None
    return dict(img_resolution=resolution, img_channels=o["num_channels"], resample_filter=o["resample_kernel"])


def _dense_features(o: Dict[str, Any], channel_base: int, channel_max: int, what: str) -> None:
    """D's 4x4 dense layer has nf(0) features; ours (and ada-pytorch's) those of the 4x4 block."""
    dense = int(np.clip(int(o["fmap_base"]), o["fmap_min"], o["fmap_max"]))
    if dense != min(channel_base // 4, channel_max):
        raise UserError(f"{what}: the 4x4 dense layer has {dense} features, not the {min(channel_base // 4, channel_max)} "
                        "channels of the 4x4 block; this discriminator shape is not supported")


def _components(net: TFNetwork, own: Dict[str, np.ndarray], functions: Dict[str, str], what: str,
                release: Release = STYLEGAN2) -> Dict[str, Dict[str, np.ndarray]]:
    """G's ``own`` variables (``""``) and those of its sub-networks (``"mapping/"``, ``"synthesis/"``)."""
    components = net.state.get("components")
    components = components if isinstance(components, dict) else {}
    variables = {"": own}
    for key, func in functions.items():
        if not isinstance(components.get(key), TFNetwork):
            raise UserError(f"{what}: the generator has no '{key}' sub-network")
        variables[key + "/"] = _check_network(components[key], func, f"{what}/{key}", release)
    return variables


def _generator(net: TFNetwork, what: str) -> NetworkState:
    own = _check_network(net, "G_main", what)
    o = _options(net.static_kwargs, {**_G_MAIN, **_MAPPING, **_SYNTHESIS}, what)
    if o["mapping_func"] != "G_mapping" or o["synthesis_func"] != "G_synthesis_stylegan2":
        raise UserError(f"{what}: {options.shown(o['mapping_func'])} / {options.shown(o['synthesis_func'])} are not "
                        "supported; only StyleGAN2's G_mapping / G_synthesis_stylegan2 (configs E and F) can be imported")
    if not o["normalize_latents"]:
        raise UserError(f"{what}: normalize_latents=False is not supported")
    variables = _components(net, own, {"mapping": "G_mapping", "synthesis": "G_synthesis_stylegan2"}, what)
    _unconditional(o, what)
    common = _common(o, what)
    log2 = resolution_log2(common["img_resolution"])
    channel_base, channel_max = _channels(o, [2**k for k in range(2, log2 + 1)], what)
    beta = o["dlatent_avg_beta"]
    config = GeneratorConfig(
        z_dim=o["latent_size"], c_dim=0, w_dim=o["dlatent_size"], channel_base=channel_base, channel_max=channel_max,
        architecture=o["architecture"], activation=o["nonlinearity"], **common,
        mapping=MappingConfig(num_layers=o["mapping_layers"], layer_features=o["mapping_fmaps"],
                              activation=o["mapping_nonlinearity"], lr_multiplier=o["mapping_lrmul"],
                              # TF1 keeps dlatent_avg even when it does not track it; beta 1 = frozen.
                              w_avg_beta=1.0 if beta is None else beta),
    )
    return NetworkState(what if what != "Gs" else "G_ema", config,
                        # lod: G_main's progressive-growing level, always 0 in StyleGAN2.
                        _generator_tensors(variables, config, what, ignored=("lod",)))


class _Variables:
    """TF1 variables by full name (``mapping/Dense0/weight``); each can be taken once."""

    def __init__(self, groups: Dict[str, Dict[str, np.ndarray]], what: str):
        self.values = {prefix + name: value for prefix, group in groups.items() for name, value in group.items()}
        self.what = what

    def take(self, name: str, rank: int, leading: Tuple[int, ...] = ()) -> np.ndarray:
        """The variable, which must have ``rank`` axes, the first of them ``leading``."""
        if name not in self.values:
            raise UserError(f"{self.what}: the TF1 network has no variable {name!r} that its options imply")
        value = self.values.pop(name)
        if value.ndim != rank or value.shape[:len(leading)] != leading:
            expected = f"{rank} axes"
            if leading:
                expected = f"[{', '.join(map(str, leading))}{', ...' if rank > len(leading) else ''}]"
            raise UserError(f"{self.what}: TF1 variable {name!r} has shape {list(value.shape)}, expected {expected}")
        return value

    def finish(self, ignored: Tuple[str, ...] = ()) -> None:
        left = sorted(set(self.values) - set(ignored))
        if left:
            raise UserError(f"{self.what}: the TF1 network has a variable {left[0]!r} that this importer does not know")


def _hwio_to_oihw(w: np.ndarray, flip: bool = False) -> np.ndarray:
    return (w[::-1, ::-1] if flip else w).transpose(3, 2, 0, 1)


def _mapping_tensors(t: Dict[str, np.ndarray], v: _Variables, embed: Optional[str], layer: str,
                     num_layers: int) -> None:
    """A mapping network's dense layers (TF scopes ``<layer>0``, ``<layer>1``, ...) and, when
    ``embed`` names one, its label embedding, into ``t`` under our names (``mapping.*``)."""
    if embed is not None:
        t["mapping.embed.weight"] = v.take(f"{embed}/weight", 2).T
        t["mapping.embed.bias"] = v.take(f"{embed}/bias", 1)
    for i in range(num_layers):
        t[f"mapping.fc{i}.weight"] = v.take(f"{layer}{i}/weight", 2).T
        t[f"mapping.fc{i}.bias"] = v.take(f"{layer}{i}/bias", 1)


def _generator_tensors(groups: Dict[str, Dict[str, np.ndarray]], config: GeneratorConfig, what: str,
                       ignored: Tuple[str, ...] = ()) -> Dict[str, np.ndarray]:
    """G's variables in the interchange layout; ``ignored``: variables known to have no meaning here."""
    v = _Variables(groups, what)
    t = {"mapping.w_avg": v.take("dlatent_avg", 1)}
    _mapping_tensors(t, v, "mapping/LabelEmbed" if config.c_dim else None, "mapping/Dense", config.mapping.num_layers)

    def modulated(scope: str, ours: str, noise: int = -1, flip: bool = False) -> None:
        t[f"{ours}.weight"] = _hwio_to_oihw(v.take(f"{scope}/weight", 4), flip)
        t[f"{ours}.bias"] = v.take(f"{scope}/bias", 1)
        t[f"{ours}.affine.weight"] = v.take(f"{scope}/mod_weight", 2).T
        t[f"{ours}.affine.bias"] = v.take(f"{scope}/mod_bias", 1) + 1  # TF1 adds the 1 at run time
        if noise >= 0 and config.use_noise:
            t[f"{ours}.noise_strength"] = v.take(f"{scope}/noise_strength", 0)
            t[f"{ours}.noise_const"] = v.take(f"synthesis/noise{noise}", 4, (1, 1))[0, 0]

    log2 = int(np.log2(config.img_resolution))
    arch = config.architecture
    t["synthesis.b4.const"] = v.take("synthesis/4x4/Const/const", 4, (1,))[0]
    modulated("synthesis/4x4/Conv", "synthesis.b4.conv1", noise=0)
    for k in range(2, log2 + 1):
        r = 2**k
        scope, ours = f"synthesis/{r}x{r}", f"synthesis.b{r}"
        if k > 2:
            modulated(f"{scope}/Conv0_up", f"{ours}.conv0", noise=2 * k - 5, flip=True)
            modulated(f"{scope}/Conv1", f"{ours}.conv1", noise=2 * k - 4)
            if arch == "resnet":
                t[f"{ours}.skip.weight"] = _hwio_to_oihw(v.take(f"{scope}/Skip/weight", 4), flip=True)
        if arch == "skip" or k == log2:
            modulated(f"{scope}/ToRGB", f"{ours}.torgb")
    v.finish(ignored)
    return t


def _discriminator(net: TFNetwork, what: str) -> NetworkState:
    own = _check_network(net, "D_stylegan2", what)
    o = _options(net.static_kwargs, _D, what)
    _unconditional(o, what)
    common = _common(o, what)
    log2 = resolution_log2(common["img_resolution"])
    channel_base, channel_max = _channels(o, [2**k for k in range(2, log2 + 1)], what)
    _dense_features(o, channel_base, channel_max, what)
    group = o["mbstd_group_size"]
    config = DiscriminatorConfig(
        c_dim=0, architecture=o["architecture"], channel_base=channel_base, channel_max=channel_max,
        mbstd_group_size=group if group and group > 1 else None,
        mbstd_num_channels=o["mbstd_num_features"] if group and group > 1 else 0,
        activation=o["nonlinearity"], **common,
    )
    return NetworkState("D", config, _discriminator_tensors(own, config, what))


def _discriminator_tensors(own: Dict[str, np.ndarray], config: DiscriminatorConfig, what: str) -> Dict[str, np.ndarray]:
    """D's variables in the interchange layout (a conditional D: stylegan2-ada's label mapping)."""
    v = _Variables({"": own}, what)
    t = {}
    if config.c_dim:
        _mapping_tensors(t, v, "LabelEmbed", "Mapping", config.mapping.num_layers)

    def conv(scope: str, ours: str, bias: bool = True) -> None:
        t[f"{ours}.weight"] = _hwio_to_oihw(v.take(f"{scope}/weight", 4))
        if bias:
            t[f"{ours}.bias"] = v.take(f"{scope}/bias", 1)

    arch, log2 = config.architecture, resolution_log2(config.img_resolution)
    for k in range(log2, 2, -1):
        r = 2**k
        if arch == "skip" or k == log2:
            conv(f"{r}x{r}/FromRGB", f"b{r}.fromrgb")
        conv(f"{r}x{r}/Conv0", f"b{r}.conv0")
        conv(f"{r}x{r}/Conv1_down", f"b{r}.conv1")
        if arch == "resnet":
            conv(f"{r}x{r}/Skip", f"b{r}.skip", bias=False)
    if arch == "skip":
        conv("4x4/FromRGB", "b4.fromrgb")
    conv("4x4/Conv", "b4.conv")
    for scope, ours in (("4x4/Dense0", "b4.fc"), ("Output", "b4.out")):
        t[f"{ours}.weight"] = v.take(f"{scope}/weight", 2).T  # rows of Dense0 are in TF1's NCHW order, as ada's
        t[f"{ours}.bias"] = v.take(f"{scope}/bias", 1)
    v.finish()
    return t
