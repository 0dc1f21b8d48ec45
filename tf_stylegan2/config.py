"""Configuration as plain dataclasses, and the named presets of NVIDIA's releases.

A preset fixes everything that depends on the dataset only through its resolution: network widths,
regularization strength, batch, learning rate, EMA. :func:`resolve` turns a preset name plus the
dataset's resolution/channels/labels and the number of replicas into a :class:`StyleGAN2Config`.

Sources of the numbers:
  * config-e / config-f: StyleGAN2 (TF1) ``run_training.py``; its ``fmap_base`` 8 << 10 and 16 << 10
    equal ``channel_base`` 16384 and 32768 here (TF1 counts channels per stage, ``2 * base / res``).
  * stylegan2, paper256, paper512, paper1024, cifar, auto: stylegan2-ada-pytorch ``train.py``
    (``cfg_specs``), which also enables mixed precision (4 fp16 resolutions, conv clamp 256).
  * small (ours): 'auto' with a narrow network (channel_base 2048, channel_max 128, 128-wide z and
    w), about 1 M parameters per network, so that a CPU trains it on small images in minutes (the
    README's demo and the tests).
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any, Dict, Optional, Tuple

from layers.rules import check_resolution


def from_dict(cls, data: Dict[str, Any]):
    """Builds dataclass ``cls`` from a dict as :meth:`Serializable.to_dict` writes it, possibly
    through JSON: fields that are dataclasses from their dicts, lists as tuples. Unknown keys are a
    ValueError naming them."""
    unknown = set(data) - {f.name for f in dataclasses.fields(cls)}
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown fields {sorted(unknown)}")
    types = typing.get_type_hints(cls)
    kwargs = {}
    for key, value in data.items():
        if dataclasses.is_dataclass(types[key]) and isinstance(value, dict):
            value = from_dict(types[key], value)
        elif isinstance(value, list):
            value = tuple(value)
        kwargs[key] = value
    return cls(**kwargs)


class Serializable:
    """``to_dict`` / ``from_dict`` of a configuration dataclass: the one serialiser of configs
    (networks' ``get_config``, training_options.json)."""

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Dict[str, Any]):
        return from_dict(cls, data)


@dataclasses.dataclass(frozen=True)
class MappingConfig(Serializable):
    """Mapping network options (the discriminator reuses it to embed labels, without w_avg)."""

    num_layers: int = 8
    embed_features: Optional[int] = None
    layer_features: Optional[int] = None
    activation: str = "lrelu"
    lr_multiplier: float = 0.01
    w_avg_beta: Optional[float] = 0.995


@dataclasses.dataclass(frozen=True)
class GeneratorConfig(Serializable):
    """Everything needed to build a Generator. Channels at resolution r: min(channel_base // r, channel_max);
    the 4x4 constant has ``const_channels`` (None: those of the 4x4 block; stylegan2-ada TF's ``fmap_const``)."""

    img_resolution: int
    img_channels: int = 3
    z_dim: int = 512
    c_dim: int = 0
    w_dim: int = 512
    channel_base: int = 32768
    channel_max: int = 512
    num_fp16_res: int = 0
    conv_clamp: Optional[float] = None
    architecture: str = "skip"
    resample_filter: Tuple[float, ...] = (1, 3, 3, 1)
    use_noise: bool = True
    activation: str = "lrelu"
    mapping: MappingConfig = dataclasses.field(default_factory=MappingConfig)
    const_channels: Optional[int] = None


@dataclasses.dataclass(frozen=True)
class DiscriminatorConfig(Serializable):
    """Everything needed to build a Discriminator."""

    img_resolution: int
    img_channels: int = 3
    c_dim: int = 0
    architecture: str = "resnet"
    channel_base: int = 32768
    channel_max: int = 512
    num_fp16_res: int = 0
    conv_clamp: Optional[float] = None
    cmap_dim: Optional[int] = None
    mbstd_group_size: Optional[int] = 4
    mbstd_num_channels: int = 1
    resample_filter: Tuple[float, ...] = (1, 3, 3, 1)
    activation: str = "lrelu"
    mapping: MappingConfig = dataclasses.field(default_factory=lambda: MappingConfig(w_avg_beta=None))


@dataclasses.dataclass(frozen=True)
class TrainingConfig(Serializable):
    """Optimization and regularization hyper-parameters (the loop's own options live with the loop).

    ``batch_size`` is the global batch over all replicas; the lazy regularization intervals are in
    minibatches; the G_ema half-life ``ema_kimg`` is in thousands of images. With ``ema_rampup``
    the half-life is at most ``ema_rampup`` times the images seen so far, so it grows from zero
    until it reaches ``ema_kimg`` (stylegan2-ada's ``ema_rampup``).

    Discriminator augmentation (stylegan2-ada's ``augment_kwargs``, ``augment_p``, ``ada_target``,
    ``ada_interval``, ``ada_kimg``): ``augment_pipe`` names a pipeline of ``train.augment`` (None:
    D sees the images as they are), starting at probability ``augment_p``; with ``ada_target`` p
    adapts every ``ada_interval`` minibatches, by at most one unit per ``ada_kimg`` thousand images.
    ``freeze_layers`` (Freeze-D): D's first layers, from the input, that are not trained.
    """

    batch_size: int = 32
    total_kimg: int = 25000
    g_lr: float = 0.002
    d_lr: float = 0.002
    betas: Tuple[float, float] = (0.0, 0.99)
    epsilon: float = 1e-8
    r1_gamma: float = 10.0
    g_reg_interval: int = 4
    d_reg_interval: int = 16
    pl_weight: float = 2.0
    pl_batch_shrink: int = 2
    pl_decay: float = 0.01
    style_mixing_prob: float = 0.9
    ema_kimg: float = 10.0
    ema_rampup: Optional[float] = None
    augment_pipe: Optional[str] = None
    augment_p: float = 0.0
    ada_target: Optional[float] = None
    ada_interval: int = 4
    ada_kimg: float = 500.0
    freeze_layers: int = 0


@dataclasses.dataclass(frozen=True)
class StyleGAN2Config(Serializable):
    """A resolved preset: the two networks and how to train them."""

    preset: str
    G: GeneratorConfig
    D: DiscriminatorConfig
    train: TrainingConfig


@dataclasses.dataclass(frozen=True)
class Preset:
    """One row of the preset table. -1 marks values that 'auto' derives from resolution and replicas."""

    ref_replicas: int
    kimg: int
    batch: int
    mbstd: int
    channel_base: int
    lr: float
    gamma: float
    ema_kimg: float
    ema_rampup: Optional[float]
    map_layers: int
    channel_max: int = 512
    latent_dim: int = 512  # z_dim = w_dim
    num_fp16_res: int = 4
    conv_clamp: Optional[float] = 256
    g_architecture: str = "skip"
    d_architecture: str = "resnet"
    pl_weight: float = 2.0
    style_mixing_prob: float = 0.9
    use_noise: bool = True


PRESETS: Dict[str, Preset] = {
    # StyleGAN2 paper, Table 1 (TF1 release: float32, no clamping).
    "config-e": Preset(8, 25000, 32, 4, 16384, 0.002, 100.0, 10.0, None, 8, num_fp16_res=0, conv_clamp=None),
    "config-f": Preset(8, 25000, 32, 4, 32768, 0.002, 10.0, 10.0, None, 8, num_fp16_res=0, conv_clamp=None),
    # stylegan2-ada-pytorch.
    "stylegan2": Preset(8, 25000, 32, 4, 32768, 0.002, 10.0, 10.0, None, 8),
    "paper256": Preset(8, 25000, 64, 8, 16384, 0.0025, 1.0, 20.0, None, 8),
    "paper512": Preset(8, 25000, 64, 8, 32768, 0.0025, 0.5, 20.0, None, 8),
    "paper1024": Preset(8, 25000, 32, 4, 32768, 0.002, 2.0, 10.0, None, 8),
    "cifar": Preset(
        2, 100000, 64, 32, 32768, 0.0025, 0.01, 500.0, 0.05, 2, d_architecture="orig", pl_weight=0.0,
        style_mixing_prob=0.0,
    ),
    "auto": Preset(-1, 25000, -1, -1, -1, -1.0, -1.0, -1.0, 0.05, 2),
    "small": Preset(-1, 25000, -1, -1, 2048, -1.0, -1.0, -1.0, 0.05, 2, channel_max=128, latent_dim=128),
    # `make demo` (ours): small's network for 10 kimg on two CPU cores, chosen by measured runs
    # (docs/TRAINING.md). Against 'auto' at 32 px: batch 8 (four times the steps in the time),
    # gamma 1 (auto's 0.0256 lets D overpower G sooner), EMA half-life 10 kimg, no per-pixel noise
    # (flat-coloured shapes have no stochastic detail to model; with it the distance barely left its
    # initial value), no path-length regulariser and no style mixing (cifar's choice: both slow a
    # short run down and neither helps what the demo shows).
    "demo": Preset(1, 10, 8, 4, 2048, 0.0025, 1.0, 10.0, 0.05, 2, channel_max=128, latent_dim=128, pl_weight=0.0,
                   style_mixing_prob=0.0, use_noise=False),
}


def _auto(preset: str, resolution: int, num_replicas: int) -> Preset:
    """stylegan2-ada's heuristics for an unseen dataset, from resolution and replica count, filling
    the -1 entries of ``preset`` ('auto' or 'small')."""
    batch = max(min(num_replicas * min(4096 // resolution, 32), 64), num_replicas)
    spec = PRESETS[preset]
    return dataclasses.replace(
        spec,
        ref_replicas=num_replicas,
        batch=batch,
        mbstd=min(batch // num_replicas, 4),
        channel_base=spec.channel_base if spec.channel_base > 0 else (32768 if resolution >= 512 else 16384),
        lr=0.002 if resolution >= 1024 else 0.0025,
        gamma=0.0002 * resolution**2 / batch,
        ema_kimg=batch * 10 / 32,
    )


def resolve(
    preset: str,
    resolution: int,
    img_channels: int = 3,
    c_dim: int = 0,
    num_replicas: int = 1,
) -> StyleGAN2Config:
    """Resolves a preset for a dataset of ``resolution``, ``img_channels`` and ``c_dim`` labels."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; expected one of {sorted(PRESETS)}")
    check_resolution(resolution)
    spec = _auto(preset, resolution, num_replicas) if PRESETS[preset].ref_replicas < 0 else PRESETS[preset]
    g = GeneratorConfig(
        img_resolution=resolution,
        img_channels=img_channels,
        c_dim=c_dim,
        z_dim=spec.latent_dim,
        w_dim=spec.latent_dim,
        channel_base=spec.channel_base,
        channel_max=spec.channel_max,
        num_fp16_res=spec.num_fp16_res,
        conv_clamp=spec.conv_clamp,
        architecture=spec.g_architecture,
        use_noise=spec.use_noise,
        mapping=MappingConfig(num_layers=spec.map_layers),
    )
    d = DiscriminatorConfig(
        img_resolution=resolution,
        img_channels=img_channels,
        c_dim=c_dim,
        architecture=spec.d_architecture,
        channel_base=spec.channel_base,
        channel_max=spec.channel_max,
        num_fp16_res=spec.num_fp16_res,
        conv_clamp=spec.conv_clamp,
        mbstd_group_size=spec.mbstd,
    )
    train = TrainingConfig(
        batch_size=spec.batch,
        total_kimg=spec.kimg,
        g_lr=spec.lr,
        d_lr=spec.lr,
        r1_gamma=spec.gamma,
        pl_weight=spec.pl_weight,
        style_mixing_prob=spec.style_mixing_prob,
        ema_kimg=spec.ema_kimg,
        ema_rampup=spec.ema_rampup,
    )
    return StyleGAN2Config(preset=preset, G=g, D=d, train=train)
