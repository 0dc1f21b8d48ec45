"""stylegan2-ada TF network pickles (its ``network-snapshot-*.pkl``, ``cifar10.pkl``) -> :class:`NetworkState`.

The TF release of stylegan2-ada (NVlabs/stylegan2-ada, ``training/networks.py``) stores its
networks as the StyleGAN2 TF1 release does: a tuple ``(G, D, Gs)`` of ``dnnlib.tflib.network.Network``
states, here of state version 5 (which adds the input and output shapes and names). The build
functions are ``G_main`` with the sub-networks ``G_mapping`` and ``G_synthesis``, and ``D_main``;
the variables are named and laid out as in the StyleGAN2 release, so :mod:`.tf1`'s helpers read
them. What this module adds is the options, mapped onto ours:

* ``fmap_base`` / ``fmap_max`` -> ``channel_base = 2 * fmap_base`` / ``channel_max`` (checked at
  every resolution, as for TF1); ``fmap_const`` (the 4x4 constant's feature maps) -> ``const_channels``;
* ``num_fp16_res``, ``conv_clamp``, ``use_noise``, ``architecture``, ``nonlinearity``,
  ``resample_kernel``: ours by meaning. The ``num_fp16_res`` highest resolutions (never 4x4 in G)
  compute in float16 in NVIDIA's code and in the mixed policy's low precision here; their only
  other effect in NVIDIA's code, a rescaling of the weights and styles before demodulation, cancels;
* G's mapping: ``mapping_layers``, ``mapping_fmaps`` (None = ``dlatent_size``), ``mapping_lrmul``,
  ``mapping_nonlinearity``; a conditional G (``label_size`` > 0) embeds the label with a biased
  dense layer of ``label_fmaps`` features (None = ``latent_size``), normalises it and concatenates
  it after the normalised z: our mapping with ``embed_features = label_fmaps``;
* a conditional D maps the label with ``LabelEmbed`` (biased, to ``mapping_fmaps`` = nf(0)
  features by default), normalisation and ``mapping_layers`` (default 0) dense layers of
  learning-rate multiplier ``mapping_lrmul`` (default 0.1) -> our label mapping with ``cmap_dim =
  embed_features = layer_features = mapping_fmaps``; its output layer gives ``mapping_fmaps``
  features whose dot product with the mapped label, over ``sqrt(mapping_fmaps)``, is the logit,
  as in our epilogue;
* ``mbstd_group_size`` (None = the whole minibatch) / ``mbstd_num_features`` (0 = no layer).

Refused with one line: the paper's comparison methods in D (``use_pagan``, ``use_spectral_norm``,
``adaptive_dropout``, ``score_max`` / ``score_size`` other than 1), a skip discriminator with
``conv_clamp`` (NVIDIA's TF code clamps its 4x4 FromRGB too, stylegan2-ada-pytorch and this
library do not), ``normalize_latents=False``, the other cases :mod:`.tf1` refuses (channel rules
ours cannot express, a dense layer wider than the 4x4 block), and every unknown option.
"""

from __future__ import annotations

from typing import Any, Dict, Tuple

from layers.rules import resolution_log2
from tf_stylegan2.config import DiscriminatorConfig, GeneratorConfig, MappingConfig
from tf_stylegan2.fileio import UserError
from tf_stylegan2.official import options, tf1
from tf_stylegan2.official.safe_unpickle import TFNetwork
from tf_stylegan2.official.state import NetworkState

FORMAT = "stylegan2-ada TF"
RELEASE = tf1.Release("stylegan2-ada", 5, "training/networks.py", "its TF release")

# Defaults of the build functions in training/networks.py, for options a pickle omits.
_MAPPING = dict(latent_size=512, label_size=0, dlatent_size=512, mapping_layers=8, mapping_fmaps=None,
                mapping_lrmul=0.01, mapping_nonlinearity="lrelu", normalize_latents=True, label_fmaps=None)
_SYNTHESIS = dict(resolution=1024, num_channels=3, fmap_base=16384, fmap_decay=1, fmap_min=1, fmap_max=512,
                  fmap_const=None, use_noise=True, architecture="skip", nonlinearity="lrelu", num_fp16_res=0,
                  conv_clamp=None, resample_kernel=[1, 3, 3, 1])
_G_MAIN = dict(dlatent_avg_beta=0.995, mapping_func="G_mapping", synthesis_func="G_synthesis")
_D = dict(resolution=1024, num_channels=3, label_size=0, fmap_base=16384, fmap_decay=1, fmap_min=1, fmap_max=512,
          mapping_layers=0, mapping_fmaps=None, mapping_lrmul=0.1, architecture="resnet", nonlinearity="lrelu",
          mbstd_group_size=None, mbstd_num_features=1, num_fp16_res=0, conv_clamp=None, resample_kernel=[1, 3, 3, 1],
          use_pagan=False, pagan_num=16, pagan_fade=0.5, score_size=1, score_max=1, use_spectral_norm=False,
          adaptive_dropout=0, freeze_layers=0)
# The comparison methods' options (pagan_num and pagan_fade act only with use_pagan): the plain D
# has these values, any other is refused.
_PLAIN_D = dict(use_pagan=False, use_spectral_norm=False, adaptive_dropout=0, score_size=1, score_max=1)

_optional_width = lambda v, n, w: options.optional_integer(v, n, w, 1)  # noqa: E731
_CHECKS = dict(
    tf1._CHECKS,
    mapping_fmaps=_optional_width, label_fmaps=_optional_width, fmap_const=_optional_width,
    mapping_layers=lambda v, n, w: options.integer(v, n, w, 0, options.MAX_LAYERS),
    mbstd_group_size=_optional_width, use_noise=options.flag,
    num_fp16_res=lambda v, n, w: options.integer(v, n, w, 0, options.MAX_LAYERS),
    conv_clamp=lambda v, n, w: options.optional_real(v, n, w, minimum=0.0, open_minimum=True),
    use_pagan=options.flag, use_spectral_norm=options.flag, score_size=options.integer, score_max=options.integer,
    adaptive_dropout=options.real, pagan_num=options.integer, pagan_fade=options.real,
    freeze_layers=options.integer,  # Freeze-D: which layers train, not what they compute
)
# Run-time options: chosen per call in our API (truncation, noise, dtype, evaluation mode), or set
# per call by NVIDIA's loss (augment_strength, which only the comparison methods read).
_RUN_TIME = frozenset({"truncation_psi", "truncation_cutoff", "truncation_psi_val", "truncation_cutoff_val",
                       "style_mixing_prob", "is_training", "is_validation", "return_dlatents", "randomize_noise",
                       "fused_modconv", "dtype", "dlatent_broadcast", "augment_strength"})


def is_ada_tf_pickle(data: Any) -> bool:
    """A ``(G, D, Gs)`` tuple of TF Networks of which one is built by stylegan2-ada's own functions."""
    if not tf1.is_tf1_pickle(data):
        return False
    G, D, Gs = data
    return D.state.get("build_func_name") == "D_main" or any(_synthesis_func(g) == "G_synthesis" for g in (G, Gs))


def _synthesis_func(net: TFNetwork) -> Any:
    kwargs = net.state.get("static_kwargs")
    components = net.state.get("components")
    synthesis = components.get("synthesis") if isinstance(components, dict) else None
    if isinstance(synthesis, TFNetwork):
        return synthesis.state.get("build_func_name")
    return kwargs.get("synthesis_func") if isinstance(kwargs, dict) else None


def read_ada_tf(data: Tuple[TFNetwork, TFNetwork, TFNetwork]) -> Dict[str, NetworkState]:
    """``{'G': ..., 'D': ..., 'G_ema': ...}`` from an unpickled ``(G, D, Gs)`` tuple."""
    G, D, Gs = data
    return {"G": _generator(G, "G"), "D": _discriminator(D, "D"), "G_ema": _generator(Gs, "Gs")}


def _options(net: TFNetwork, defaults: Dict[str, Any], what: str) -> Dict[str, Any]:
    return tf1._options(net.static_kwargs, defaults, what, _CHECKS, _RUN_TIME, RELEASE)


def _generator(net: TFNetwork, what: str) -> NetworkState:
    own = tf1._check_network(net, "G_main", what, RELEASE)
    o = _options(net, {**_G_MAIN, **_MAPPING, **_SYNTHESIS}, what)
    if o["mapping_func"] != "G_mapping" or o["synthesis_func"] != "G_synthesis":
        raise UserError(f"{what}: {options.shown(o['mapping_func'])} / {options.shown(o['synthesis_func'])} are not "
                        "supported; only stylegan2-ada's G_mapping / G_synthesis can be imported")
    if not o["normalize_latents"]:
        raise UserError(f"{what}: normalize_latents=False is not supported")
    variables = tf1._components(net, own, {"mapping": "G_mapping", "synthesis": "G_synthesis"}, what, RELEASE)
    common = tf1._common(o, what)
    log2 = resolution_log2(common["img_resolution"])
    channel_base, channel_max = tf1._channels(o, [2**k for k in range(2, log2 + 1)], what)
    const = o["fmap_const"]
    beta = o["dlatent_avg_beta"]
    config = GeneratorConfig(
        z_dim=o["latent_size"], c_dim=o["label_size"], w_dim=o["dlatent_size"], channel_base=channel_base,
        channel_max=channel_max, num_fp16_res=o["num_fp16_res"], conv_clamp=o["conv_clamp"],
        architecture=o["architecture"], use_noise=o["use_noise"], activation=o["nonlinearity"], **common,
        # One config for one network: fmap_const equal to the 4x4 block's width is the default.
        const_channels=None if const == min(channel_base // 4, channel_max) else const,
        mapping=MappingConfig(num_layers=o["mapping_layers"], layer_features=o["mapping_fmaps"],
                              embed_features=(o["label_fmaps"] or o["latent_size"]) if o["label_size"] else None,
                              activation=o["mapping_nonlinearity"], lr_multiplier=o["mapping_lrmul"],
                              # G_main keeps dlatent_avg even when it does not track it; beta 1 = frozen.
                              w_avg_beta=1.0 if beta is None else beta),
    )
    return NetworkState(what if what != "Gs" else "G_ema", config, tf1._generator_tensors(variables, config, what))


def _discriminator(net: TFNetwork, what: str) -> NetworkState:
    own = tf1._check_network(net, "D_main", what, RELEASE)
    o = _options(net, _D, what)
    for name, plain in _PLAIN_D.items():
        if o[name] != plain:
            raise UserError(f"{what}: {name}={options.shown(o[name])} (a comparison method of the stylegan2-ada "
                            f"paper) is not supported; only the plain discriminator ({name}={plain}) is")
    common = tf1._common(o, what)
    if o["architecture"] == "skip" and o["conv_clamp"] is not None:
        raise UserError(f"{what}: a skip discriminator with conv_clamp is not supported: stylegan2-ada's TF D also "
                        "clamps its 4x4 FromRGB layer, which stylegan2-ada-pytorch and this library do not")
    log2 = resolution_log2(common["img_resolution"])
    channel_base, channel_max = tf1._channels(o, [2**k for k in range(2, log2 + 1)], what)
    tf1._dense_features(o, channel_base, channel_max, what)
    cmap = o["mapping_fmaps"] or min(channel_base // 4, channel_max)  # nf(0), which equals the 4x4 width here
    config = DiscriminatorConfig(
        c_dim=o["label_size"], architecture=o["architecture"], channel_base=channel_base, channel_max=channel_max,
        num_fp16_res=o["num_fp16_res"], conv_clamp=o["conv_clamp"], cmap_dim=cmap if o["label_size"] else None,
        mbstd_group_size=o["mbstd_group_size"], mbstd_num_channels=o["mbstd_num_features"],
        activation=o["nonlinearity"], **common,
        mapping=MappingConfig(num_layers=o["mapping_layers"], embed_features=cmap, layer_features=cmap,
                              activation=o["nonlinearity"], lr_multiplier=o["mapping_lrmul"], w_avg_beta=None),
    )
    return NetworkState("D", config, tf1._discriminator_tensors(own, config, what))
