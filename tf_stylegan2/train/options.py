"""The options of a training run and how they resolve into the networks' and the optimization's
configuration.

:class:`TrainOptions` is the one statement of ``runners/train.py``'s flags: each field is a flag
of the same name, and the field's :func:`option` holds its default, help text and check.
:func:`define_flags` declares them to absl, :func:`from_flags` reads them back, and
:meth:`TrainOptions.to_flagfile` writes a run's options with absl's own serializer (the run's
``flags.txt``, which ``--flagfile`` reads back).

Adding a training flag is one change: a field here, ``name: type = option(default, "help", ...)``
(types: str, bool, int, float, Optional[str], Optional[int], Optional[float], Tuple[str, ...]). Add its name to
:data:`FIXED_ON_RESUME` too if it shapes the networks, the data or the random streams.
"""

from __future__ import annotations

import dataclasses
import math
import os
import typing
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

from absl import flags

from tf_stylegan2.config import PRESETS, DiscriminatorConfig, GeneratorConfig, Serializable, StyleGAN2Config, resolve
from tf_stylegan2.data import DatasetInfo
from tf_stylegan2.fileio import UserError
from tf_stylegan2.metrics.stats import DEFAULT_CACHE_DIR
from tf_stylegan2.metrics.suite import check_metric_names
from tf_stylegan2.precision import PRECISIONS
from tf_stylegan2.train.augment import DEFAULT_PIPELINE, PIPELINES

Check = Callable[[str, Any], None]  # (flag name, value) -> None, or raises UserError


def option(default: Any, help: str, *, choices: Optional[Sequence[str]] = None, check: Optional[Check] = None):
    """A :class:`TrainOptions` field and its flag.

    ``choices``: the accepted values, listed in the help; a str option is checked against them
    unless ``check`` is given. ``check(name, value)`` raises a UserError for a bad value (None,
    "the preset's value", is never checked). Float values are checked to be finite before that.
    """
    return dataclasses.field(default=default, metadata={"help": help, "choices": choices, "check": check})


def finite(name: str, value: Any) -> None:
    """Every float option is checked by this first: NaN passes every comparison the range checks
    make, and an infinite length or interval would loop or overflow."""
    if isinstance(value, float) and not math.isfinite(value):
        raise UserError(f"--{name} must be a finite number, got {value}")


def at_least(bound: float) -> Check:
    def check(name: str, value: Any) -> None:
        if value < bound:
            raise UserError(f"--{name} must be >= {bound}, got {value}")

    return check


def positive(name: str, value: Any) -> None:
    if not value > 0:
        raise UserError(f"--{name} must be > 0, got {value}")


def _one_of(choices: Sequence[str]) -> Check:
    def check(name: str, value: Any) -> None:
        if value not in choices:
            raise UserError(f"unknown --{name} {value!r}; expected one of {', '.join(choices)}")

    return check


def unit_interval(name: str, value: Any) -> None:
    if not 0 <= value <= 1:
        raise UserError(f"--{name} must lie in [0, 1], got {value}")


def _metrics(name: str, value: Sequence[str]) -> None:
    check_metric_names(value)


# Discriminator augmentation as stylegan2-ada's train.py sets it up.
AUG_MODES = ("ada", "noaug", "fixed")
ADA_TARGET = 0.6
ADA_KIMG = 500
ADA_KIMG_TRANSFER = 100  # p reacts faster when fine-tuning ("make ADA react faster at the beginning")


def _preset(what: str) -> str:
    return f"{what} (default: the preset's)."


@dataclasses.dataclass(frozen=True)
class TrainOptions(Serializable):
    """``None`` means: the preset's value (stylegan2-ada's ``--cfg`` logic)."""

    outdir: str = option("runs", "Where new run directories are created.")
    data: str = option("builtin:shapes32", "Training data: a folder or .zip in the training format "
                       "(runners/dataset_tool.py) or builtin:<name> (shapes16, shapes32, shapes64).")
    cfg: str = option("auto", "Preset (tf_stylegan2.config.PRESETS).", choices=tuple(PRESETS))  # ada's flag name
    cond: bool = option(False, "Conditional training on the dataset's labels (dataset.json).")
    mirror: bool = option(False, "Augment with x-flips (half of each epoch's images).")
    seed: int = option(0, "Seed of the initial weights and of every random number of training.")
    batch: Optional[int] = option(None, _preset("Global batch size over all replicas"), check=at_least(1))
    gamma: Optional[float] = option(None, _preset("R1 weight"), check=at_least(0))
    kimg: Optional[float] = option(None, _preset("Training length in thousands of images"), check=positive)
    glr: Optional[float] = option(None, _preset("G learning rate"), check=positive)
    dlr: Optional[float] = option(None, _preset("D learning rate"), check=positive)
    cbase: Optional[int] = option(None, _preset("Channel base: channels at resolution r are min(cbase / r, cmax)"),
                                  check=at_least(1))
    cmax: Optional[int] = option(None, _preset("Maximum channels per layer"), check=at_least(1))
    map: Optional[int] = option(None, _preset("Mapping network depth"), check=at_least(1))
    mbstd_group: Optional[int] = option(None, _preset("Minibatch standard deviation group size"), check=at_least(1))
    ema_kimg: Optional[float] = option(None, _preset("G_ema half-life in kimg"), check=at_least(0))
    aug: str = option("ada", "Discriminator augmentation: ada (p adapts to keep E[sign(D(real images))] at "
                      "--target), noaug, fixed (p = --p).", choices=AUG_MODES)
    p: Optional[float] = option(None, "Augmentation probability for --aug=fixed.", check=unit_interval)
    target: Optional[float] = option(None, f"ADA target for --aug=ada (default {ADA_TARGET}).",
                                     check=unit_interval)
    augpipe: Optional[str] = option(None, f"Augmentation pipeline (default {DEFAULT_PIPELINE}).",
                                    choices=tuple(PIPELINES))
    ada_kimg: Optional[float] = option(None, f"ADA speed for --aug=ada: p moves by at most 1 per this many kimg "
                                       f"(default {ADA_KIMG}, {ADA_KIMG_TRANSFER} when fine-tuning).", check=positive)
    freezed: int = option(0, "Freeze-D: how many of D's layers, counted from the input as stylegan2-ada's "
                          "freeze_layers (fromrgb, conv0, conv1, skip per block), are not trained.",
                          check=at_least(0))
    tick: float = option(4.0, "Progress interval in kimg.", check=positive)
    snap: int = option(50, "Snapshot interval in ticks: checkpoint, G_ema .keras, PNG grid, metrics.", check=at_least(1))
    keep: int = option(3, "How many checkpoints to keep.", check=at_least(1))
    metrics: Tuple[str, ...] = option((), "Metrics of G_ema per snapshot, e.g. fid50k_full, kid50k_full, "
                                      "pr50k3_full, ppl2_wend, fid2k_full, fd2k_clf (docs/METRICS.md).", check=_metrics)
    inception: Optional[str] = option(None, "Inception-v3 weights of the FID graph, for the fid, kid and is metrics.")
    vgg16: Optional[str] = option(None, "VGG16 weights, for the pr and ppl metrics.")
    lpips: Optional[str] = option(None, "LPIPS linear layers, for the ppl metrics with torchvision's VGG16 file.")
    metrics_cache: str = option(DEFAULT_CACHE_DIR, "Cache of the metrics' real-image statistics ('' = none).")
    precision: str = option("fp32", "mixed: float16 + loss scaling on GPU, bfloat16 on CPU, in the preset's "
                            "highest-resolution blocks.", choices=PRECISIONS)
    jit: bool = option(False, "Compile the training step with XLA (for GPUs; slower on CPU).")

    def __post_init__(self):
        for field in dataclasses.fields(self):
            value, meta = getattr(self, field.name), field.metadata
            finite(field.name, value)
            check = meta["check"] or (_one_of(meta["choices"]) if meta["choices"] else None)
            if check is not None and value is not None:
                check(field.name, value)
        # The combinations stylegan2-ada's train.py refuses.
        if self.aug == "fixed" and self.p is None:
            raise UserError("--aug=fixed requires --p")
        if self.p is not None and self.aug != "fixed":
            raise UserError(f"--p can only be given with --aug=fixed (not --aug={self.aug})")
        for name in ("target", "ada_kimg"):
            if getattr(self, name) is not None and self.aug != "ada":
                raise UserError(f"--{name} can only be given with --aug=ada (not --aug={self.aug})")
        if self.augpipe is not None and self.aug == "noaug":
            raise UserError("--augpipe cannot be given with --aug=noaug")

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "TrainOptions":
        """Options as a run directory stored them; an option it lacks (a run from before the option
        existed) takes the value that run trained with (:data:`STORED_DEFAULTS`), else its default."""
        return super().from_dict({**STORED_DEFAULTS, **data})

    def to_flagfile(self) -> str:
        """The options as runners/train.py flags, one per line, written by absl (options that are
        None, the preset's, are left out); ``--flagfile`` reads them back."""
        flag_values = flags.FlagValues()
        define_flags(flag_values)
        for name, value in self.to_dict().items():
            flag_values[name].value = list(value) if isinstance(value, tuple) else value
        return flag_values.flags_into_string()


# Runs written before discriminator augmentation existed trained without it.
STORED_DEFAULTS = {"aug": "noaug"}

_DEFINE = {
    str: flags.DEFINE_string, bool: flags.DEFINE_bool, int: flags.DEFINE_integer, float: flags.DEFINE_float,
    Optional[str]: flags.DEFINE_string, Optional[int]: flags.DEFINE_integer, Optional[float]: flags.DEFINE_float,
    Tuple[str, ...]: flags.DEFINE_list,
}


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """Declares one absl flag per :class:`TrainOptions` field: same name, default and help."""
    types = typing.get_type_hints(TrainOptions)
    for field in dataclasses.fields(TrainOptions):
        choices = field.metadata["choices"]
        help = field.metadata["help"] + (f" Choices: {', '.join(choices)}." if choices else "")
        default = list(field.default) if isinstance(field.default, tuple) else field.default
        _DEFINE[types[field.name]](field.name, default, help, flag_values=flag_values)


def from_flags(flag_values: flags.FlagValues = flags.FLAGS) -> Tuple[TrainOptions, Dict[str, Any]]:
    """The parsed flags as :class:`TrainOptions`, and those given explicitly (on the command line
    or in a ``--flagfile``) by name."""
    values = {}
    for field in dataclasses.fields(TrainOptions):
        value = flag_values[field.name].value
        values[field.name] = tuple(value) if isinstance(value, list) else value
    given = {name: value for name, value in values.items() if flag_values[name].present}
    return TrainOptions(**values), given


# Options that shape the networks, the data, the random streams or what D's optimizer holds: a
# resumed run keeps them.
FIXED_ON_RESUME = ("data", "cfg", "cond", "seed", "cbase", "cmax", "map", "freezed")
ARCHITECTURE_OPTIONS = ("cbase", "cmax", "map")


def resolve_config(
    options: TrainOptions,
    info: DatasetInfo,
    num_replicas: int,
    networks: Optional[Tuple[GeneratorConfig, DiscriminatorConfig]] = None,
) -> StyleGAN2Config:
    """The preset resolved for the dataset and replicas, with the options' overrides applied.

    With ``networks`` (fine-tuning pretrained networks) the architecture is theirs and the preset
    supplies the training hyper-parameters only; as in stylegan2-ada, p then adapts faster
    (``ada_kimg`` 100) and G_ema's half-life has no ramp-up.
    """
    if options.cond and info.c_dim == 0:
        raise UserError(f"--cond needs labels, but dataset {info.path} has none (no dataset.json labels)")
    config = resolve(options.cfg, info.resolution, info.channels, info.c_dim if options.cond else 0, num_replicas)
    G, D, train = config.G, config.D, config.train
    if networks is not None:
        given = [name for name in ARCHITECTURE_OPTIONS if getattr(options, name) is not None]
        if given:
            raise UserError(f"--{given[0]} would change the architecture, which comes from the pretrained networks "
                            "(--resume) when fine-tuning")
        G, D = networks
        train = dataclasses.replace(train, ema_rampup=None)
    if options.cbase is not None:
        G, D = dataclasses.replace(G, channel_base=options.cbase), dataclasses.replace(D, channel_base=options.cbase)
    if options.cmax is not None:
        G, D = dataclasses.replace(G, channel_max=options.cmax), dataclasses.replace(D, channel_max=options.cmax)
    if options.map is not None:
        G = dataclasses.replace(G, mapping=dataclasses.replace(G.mapping, num_layers=options.map))
    if options.mbstd_group is not None:
        D = dataclasses.replace(D, mbstd_group_size=options.mbstd_group)
    overrides = {
        "batch_size": options.batch, "r1_gamma": options.gamma, "total_kimg": options.kimg,
        "g_lr": options.glr, "d_lr": options.dlr, "ema_kimg": options.ema_kimg,
    }
    train = dataclasses.replace(train, **{k: v for k, v in overrides.items() if v is not None})
    augment = _augmentation(options, transfer=networks is not None)
    train = dataclasses.replace(train, freeze_layers=options.freezed, **augment)
    _check_batch(train.batch_size, num_replicas, D.mbstd_group_size)
    return dataclasses.replace(config, G=G, D=D, train=train)


def _augmentation(options: TrainOptions, transfer: bool) -> Dict[str, Any]:
    """TrainingConfig's augmentation fields: stylegan2-ada runs no pipeline for --aug=noaug, nor for a
    fixed p of 0."""
    if options.aug == "noaug" or (options.aug == "fixed" and options.p == 0):
        return {"augment_pipe": None, "augment_p": 0.0, "ada_target": None}
    out = {"augment_pipe": options.augpipe or DEFAULT_PIPELINE, "augment_p": options.p or 0.0, "ada_target": None}
    if options.aug == "ada":
        out["ada_target"] = ADA_TARGET if options.target is None else options.target
        out["ada_kimg"] = options.ada_kimg or (ADA_KIMG_TRANSFER if transfer else ADA_KIMG)
    return out


def _check_batch(batch: int, num_replicas: int, mbstd_group: Optional[int]) -> None:
    if batch % num_replicas:
        raise UserError(f"--batch={batch} is not divisible by the number of replicas ({num_replicas})")
    per_replica = batch // num_replicas
    group = min(mbstd_group or per_replica, per_replica)
    if per_replica % group:
        raise UserError(
            f"the per-replica batch {per_replica} is not divisible by the minibatch-std group size {group} "
            "(set --mbstd_group or --batch)"
        )


def run_description(options: TrainOptions, info: DatasetInfo, config: StyleGAN2Config,
                    pretrained: Optional[str] = None) -> str:
    """``<dataset>[-cond][-mirror]-<cfg>-b<batch>``, then what differs from the defaults in
    augmentation, Freeze-D and the start (as stylegan2-ada names them: ``-noaug``, ``-p0.2``,
    ``-target0.7``, ``-bgcfnc``, ``-freezed10``, ``-resume<name>``): the name of a run after its number."""
    parts = [info.name] + (["cond"] if options.cond else []) + (["mirror"] if options.mirror else [])
    parts += [options.cfg, f"b{config.train.batch_size}"]
    parts += [options.aug] if options.aug == "noaug" else []
    parts += [f"p{options.p:g}"] if options.p is not None else []
    parts += [f"target{options.target:g}"] if options.target is not None else []
    parts += [options.augpipe] if options.augpipe is not None else []
    parts += [f"adakimg{options.ada_kimg:g}"] if options.ada_kimg is not None else []
    parts += [f"freezed{options.freezed}"] if options.freezed else []
    if pretrained:
        name = os.path.splitext(os.path.basename(pretrained))[0]
        parts.append("resume" + "".join(ch if ch.isalnum() or ch in "._" else "_" for ch in name))
    return "-".join(parts)


def merge_for_resume(stored: TrainOptions, given: Dict[str, Any]) -> TrainOptions:
    """A resumed run's options: the stored ones, with the explicitly ``given`` ones applied.

    Options in FIXED_ON_RESUME must not change (a UserError names the first that does); ``outdir``
    is ignored (the run continues in its own directory).
    """
    for key in FIXED_ON_RESUME:
        if key in given and given[key] != getattr(stored, key):
            raise UserError(
                f"--{key}={given[key]} differs from the resumed run's --{key}={getattr(stored, key)}; "
                "a resumed run keeps its networks, data and seed (start a new run instead)"
            )
    changes = {k: v for k, v in given.items() if k != "outdir"}
    return dataclasses.replace(stored, **changes)
