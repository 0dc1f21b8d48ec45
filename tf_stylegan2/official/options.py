"""Checks of the values an official file records, before the importers compute with any of them.

A well-formed pickle can still hold ``fmap_base=None``, ``inf``, a string where a width belongs or
a filter of text. Each check returns the value in the type our configs use, or raises a one-line
:class:`UserError` naming the option; :func:`checked_config` applies them to every field of the
config an importer made, so no network is built from an option of the wrong type or range.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Iterable, Optional, Tuple, Union

import numpy as np

from custom_ops import ACTIVATIONS
from layers.rules import ARCHITECTURES
from tf_stylegan2.config import DiscriminatorConfig, GeneratorConfig, MappingConfig
from tf_stylegan2.fileio import UserError

# Far beyond every released network (widths 512, 1024 px, 8 mapping layers), and small enough that
# sizes computed from them stay exact; the weights must still match the options exactly.
MAX_WIDTH = 1 << 16
MAX_RESOLUTION = 1 << 14
MAX_LAYERS = 64
MAX_TAPS = 16


def shown(value: Any, limit: int = 60) -> str:
    """``repr(value)``, cut to ``limit`` characters for messages."""
    text = repr(value)
    return text[:limit] + "..." if len(text) > limit else text


def _fail(what: str, name: str, value: Any, expected: str) -> UserError:
    return UserError(f"{what}: option {name}={shown(value)} is not supported (expected {expected})")


def integer(value: Any, name: str, what: str, minimum: int = 0, maximum: int = MAX_WIDTH,
            allow_float: bool = False) -> int:
    """An int in [minimum, maximum]; ``allow_float`` also takes integral floats (TF1 computes some
    options, e.g. ``fmap_base``, in floating point)."""
    numbers = (int, np.integer, float, np.floating) if allow_float else (int, np.integer)
    if (
        isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers)
        or (isinstance(value, (float, np.floating)) and not (math.isfinite(value) and float(value).is_integer()))
        or not minimum <= value <= maximum
    ):
        raise _fail(what, name, value, f"an integer from {minimum} to {maximum}")
    return int(value)


def optional_integer(value: Any, name: str, what: str, minimum: int = 0, maximum: int = MAX_WIDTH) -> Optional[int]:
    return None if value is None else integer(value, name, what, minimum, maximum)


def real(value: Any, name: str, what: str, minimum: float = -math.inf, maximum: float = math.inf,
         open_minimum: bool = False) -> float:
    """A finite number in [minimum, maximum] (or (minimum, maximum] with ``open_minimum``)."""
    bound = "a finite number" + (f" {'>' if open_minimum else '>='} {minimum}" if minimum > -math.inf else "")
    bound += f" <= {maximum}" if maximum < math.inf else ""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer, float, np.floating)):
        raise _fail(what, name, value, bound)
    value = float(value)
    if not math.isfinite(value) or value < minimum or value > maximum or (open_minimum and value == minimum):
        raise _fail(what, name, value, bound)
    return value


def optional_real(value: Any, name: str, what: str, **bounds) -> Optional[float]:
    return None if value is None else real(value, name, what, **bounds)


def flag(value: Any, name: str, what: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise _fail(what, name, value, "True or False")
    return bool(value)


def choice(value: Any, name: str, what: str, choices: Iterable[str]) -> str:
    choices = tuple(choices)
    if not isinstance(value, str) or value not in choices:
        raise _fail(what, name, value, "one of " + ", ".join(repr(c) for c in choices))
    return value


def taps(value: Any, name: str, what: str) -> Tuple[float, ...]:
    """A 1-D FIR filter: 1 to MAX_TAPS finite numbers with a non-zero sum."""
    expected = f"a list of 1 to {MAX_TAPS} finite numbers with a non-zero sum"
    if isinstance(value, np.ndarray) and value.ndim == 1:
        value = value.tolist()
    if not isinstance(value, (list, tuple)) or not 1 <= len(value) <= MAX_TAPS:
        raise _fail(what, name, value, expected)
    out = tuple(real(t, f"{name}[{i}]", what) for i, t in enumerate(value))
    if sum(out) == 0 or not math.isfinite(sum(out)):
        raise _fail(what, name, value, expected)
    return out


def resolution(value: Any, name: str, what: str) -> int:
    value = integer(value, name, what, 4, MAX_RESOLUTION)
    if value & (value - 1):
        raise _fail(what, name, value, f"a power of two from 4 to {MAX_RESOLUTION}")
    return value


Config = Union[GeneratorConfig, DiscriminatorConfig]


def _checked_mapping(m: Any, what: str, generator: bool) -> MappingConfig:
    if not isinstance(m, MappingConfig):
        raise UserError(f"{what}: malformed mapping options")
    return MappingConfig(
        num_layers=integer(m.num_layers, "mapping.num_layers", what, 0, MAX_LAYERS),
        embed_features=optional_integer(m.embed_features, "mapping.embed_features", what, 1),
        layer_features=optional_integer(m.layer_features, "mapping.layer_features", what, 1),
        activation=choice(m.activation, "mapping.activation", what, ACTIVATIONS),
        lr_multiplier=real(m.lr_multiplier, "mapping.lr_multiplier", what, 0.0, open_minimum=True),
        w_avg_beta=optional_real(m.w_avg_beta, "mapping.w_avg_beta", what, minimum=0.0, maximum=1.0) if generator else None,
    )


def checked_config(config: Config, what: str) -> Config:
    """``config`` with every field checked for the type and range our networks need (and ints as
    ints, floats as floats), or a one-line UserError naming the first field that is not."""
    fields = dict(
        img_resolution=resolution(config.img_resolution, "img_resolution", what),
        img_channels=integer(config.img_channels, "img_channels", what, 1),
        c_dim=integer(config.c_dim, "c_dim", what),
        channel_base=integer(config.channel_base, "channel_base", what, 1, MAX_WIDTH * MAX_RESOLUTION),
        channel_max=integer(config.channel_max, "channel_max", what, 1),
        num_fp16_res=integer(config.num_fp16_res, "num_fp16_res", what),
        conv_clamp=optional_real(config.conv_clamp, "conv_clamp", what, minimum=0.0, open_minimum=True),
        architecture=choice(config.architecture, "architecture", what, ARCHITECTURES),
        activation=choice(config.activation, "activation", what, ACTIVATIONS),
        resample_filter=taps(config.resample_filter, "resample_filter", what),
    )
    if fields["channel_base"] < fields["img_resolution"]:
        raise UserError(f"{what}: channel_base={fields['channel_base']} leaves no channels at "
                        f"{fields['img_resolution']}x{fields['img_resolution']} (channel_base / resolution there)")
    generator = isinstance(config, GeneratorConfig)
    channels4 = min(fields["channel_base"] // 4, fields["channel_max"])
    if generator:
        fields.update(z_dim=integer(config.z_dim, "z_dim", what, 1), w_dim=integer(config.w_dim, "w_dim", what, 1),
                      use_noise=flag(config.use_noise, "use_noise", what),
                      const_channels=optional_integer(config.const_channels, "const_channels", what, 1))
    else:
        fields.update(cmap_dim=optional_integer(config.cmap_dim, "cmap_dim", what, 1),
                      mbstd_group_size=optional_integer(config.mbstd_group_size, "mbstd_group_size", what, 1),
                      mbstd_num_channels=integer(config.mbstd_num_channels, "mbstd_num_channels", what))
        if fields["mbstd_num_channels"] and channels4 % fields["mbstd_num_channels"]:
            raise UserError(f"{what}: the {channels4} channels at 4x4 cannot be split into "
                            f"mbstd_num_channels={fields['mbstd_num_channels']} minibatch-std slices")
    mapping = fields["mapping"] = _checked_mapping(config.mapping, what, generator)
    if mapping.num_layers == 0 and (generator or fields["c_dim"]):  # built without layers: its input is its output
        width = fields["w_dim"] if generator else (fields["cmap_dim"] or channels4)
        inputs = (fields["z_dim"] if generator else 0) + ((mapping.embed_features or width) if fields["c_dim"] else 0)
        if inputs != width:
            raise UserError(f"{what}: a mapping network without layers passes its {inputs} input features through, "
                            f"but {width} are expected")
    return dataclasses.replace(config, **fields)
