"""The options of a training run (one field per flag of runners/train.py) and how they resolve into
the networks' and the optimization's configuration."""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, Optional, Tuple

from tf_stylegan2.config import PRESETS, StyleGAN2Config, resolve
from tf_stylegan2.data import DatasetInfo
from tf_stylegan2.fileio import UserError
from tf_stylegan2.metrics.suite import check_metric_names
from tf_stylegan2.precision import PRECISIONS


@dataclasses.dataclass(frozen=True)
class TrainOptions:
    """``None`` means: the preset's value (stylegan2-ada's ``--cfg`` logic)."""

    outdir: str = "runs"
    data: str = "builtin:shapes32"
    cfg: str = "auto"
    cond: bool = False
    mirror: bool = False
    seed: int = 0
    batch: Optional[int] = None
    gamma: Optional[float] = None
    kimg: Optional[float] = None
    glr: Optional[float] = None
    dlr: Optional[float] = None
    cbase: Optional[int] = None
    cmax: Optional[int] = None
    map: Optional[int] = None
    mbstd_group: Optional[int] = None
    ema_kimg: Optional[float] = None
    tick: float = 4.0  # kimg per progress line
    snap: int = 50  # ticks per snapshot (checkpoint, network, images, metrics)
    keep: int = 3  # checkpoints kept
    metrics: Tuple[str, ...] = ()
    precision: str = "fp32"
    jit: bool = False

    def __post_init__(self):
        if self.cfg not in PRESETS:
            raise UserError(f"unknown --cfg {self.cfg!r}; expected one of {', '.join(sorted(PRESETS))}")
        if self.precision not in PRECISIONS:
            raise UserError(f"unknown --precision {self.precision!r}; expected one of {', '.join(PRECISIONS)}")
        check_metric_names(self.metrics)
        for name in ("batch", "cbase", "cmax", "map", "mbstd_group", "snap", "keep"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise UserError(f"--{name} must be >= 1, got {value}")
        for name in ("gamma", "ema_kimg"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise UserError(f"--{name} must be >= 0, got {value}")
        for name in ("kimg", "glr", "dlr", "tick"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise UserError(f"--{name} must be > 0, got {value}")

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "TrainOptions":
        unknown = set(data) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise UserError(f"unknown training options {sorted(unknown)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})

    def to_flagfile(self) -> str:
        """The options as runners/train.py flags, one per line (``--flagfile`` reads it back)."""
        lines = []
        for key, value in self.to_dict().items():
            if value is None:
                continue
            if isinstance(value, bool):
                lines.append(f"--{key}" if value else f"--no{key}")
            elif isinstance(value, tuple):
                lines.append(f"--{key}={','.join(value)}")
            else:
                lines.append(f"--{key}={value}")
        return "\n".join(lines) + "\n"


# Options that shape the networks, the data or the random streams: a resumed run keeps them.
FIXED_ON_RESUME = ("data", "cfg", "cond", "seed", "cbase", "cmax", "map")


def resolve_config(options: TrainOptions, info: DatasetInfo, num_replicas: int) -> StyleGAN2Config:
    """The preset resolved for the dataset and replicas, with the options' overrides applied."""
    if options.cond and info.c_dim == 0:
        raise UserError(f"--cond needs labels, but dataset {info.path} has none (no dataset.json labels)")
    cfg = resolve(options.cfg, info.resolution, info.channels, info.c_dim if options.cond else 0, num_replicas)
    G, D, train = cfg.G, cfg.D, cfg.train
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
    _check_batch(train.batch_size, num_replicas, D.mbstd_group_size)
    return dataclasses.replace(cfg, G=G, D=D, train=train)


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


def run_description(options: TrainOptions, info: DatasetInfo, cfg: StyleGAN2Config) -> str:
    """``<dataset>[-cond][-mirror]-<cfg>-b<batch>``, the name of a run after its number."""
    parts = [info.name] + (["cond"] if options.cond else []) + (["mirror"] if options.mirror else [])
    return "-".join(parts + [options.cfg, f"b{cfg.train.batch_size}"])


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
