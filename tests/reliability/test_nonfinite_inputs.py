"""NaN and infinity are refused where a float is parsed: every training option (--gamma=nan trained
with R1 off; --kimg=inf crashed after creating the run directory), every runner's float flag, the
truncation lists and the TFLite preview. (The SavedModel's request inputs: tests/export.)"""

import dataclasses
import math
import types
import typing

import pytest
from absl import flags
from reliability_helpers import TINY, assert_one_line, run_runner

from runners import cli
from tf_stylegan2.export.tflite import preview
from tf_stylegan2.fileio import UserError
from tf_stylegan2.sampling import parse_truncation
from tf_stylegan2.train.options import TrainOptions

NON_FINITE = [math.nan, math.inf, -math.inf]
FLOAT_FIELDS = [f.name for f in dataclasses.fields(TrainOptions)
                if typing.get_type_hints(TrainOptions)[f.name] in (float, typing.Optional[float])]


def test_every_float_option_is_checked_by_construction():
    assert {"gamma", "kimg", "glr", "dlr", "ema_kimg", "tick"} <= set(FLOAT_FIELDS)
    for name in FLOAT_FIELDS:
        for value in NON_FINITE:
            with pytest.raises(UserError, match=rf"^--{name} must be a finite number, got {value}$"):
                TrainOptions(**{name: value})
    # The range checks still apply to finite values.
    with pytest.raises(UserError, match="--gamma must be >= 0, got -1.0"):
        TrainOptions(gamma=-1.0)
    assert TrainOptions(gamma=0.0, kimg=1e-3, tick=1e6).gamma == 0.0


def test_a_stored_run_with_a_non_finite_option_is_refused():
    stored = {**TrainOptions().to_dict(), "gamma": math.nan}  # json.loads reads NaN as float('nan')
    with pytest.raises(UserError, match="--gamma must be a finite number"):
        TrainOptions.from_dict(stored)


def test_float_flags_of_every_runner_are_checked_after_parsing():
    flag_values = flags.FlagValues()
    flags.DEFINE_float("trunc", 1.0, "psi", flag_values=flag_values)
    flags.DEFINE_float("fps", None, "frames per second", flag_values=flag_values)
    for text in ("nan", "inf", "-inf", "NaN"):
        flag_values.unparse_flags()
        flag_values(["prog", f"--trunc={text}"])
        with pytest.raises(UserError, match=r"^--trunc must be a finite number, got -?(nan|inf)$"):
            cli.check_float_flags(flag_values)
    flag_values.unparse_flags()
    flag_values(["prog", "--trunc=-0.5"])
    cli.check_float_flags(flag_values)  # finite values (and None) pass


def test_truncation_lists_and_the_tflite_preview_refuse_non_finite_psi():
    for text in ("nan", "1,inf", "0.7,-inf"):
        with pytest.raises(UserError, match="psi must be finite"):
            parse_truncation(text)
    model = types.SimpleNamespace(kind="generator", path="g.tflite")  # refused before the model runs
    for value in NON_FINITE:
        with pytest.raises(UserError, match="truncation psi must be a finite number"):
            preview(model, [0], value)


@pytest.mark.parametrize("program, args, flag", [
    ("train", [*TINY, "--kimg=inf", "--outdir={out}"], "--kimg"),
    ("preview_tflite", ["--model=m.tflite", "--out={out}/p.png", "--trunc=nan"], "--trunc"),
    ("interpolate", ["--network=G.keras", "--seeds=1,2", "--fps=-inf", "--outdir={out}"], "--fps"),
])
def test_runners_refuse_non_finite_flags_in_one_line(tmp_path, program, args, flag):
    out = tmp_path / "out"
    r = run_runner(program, *[a.format(out=out) for a in args])
    assert_one_line(r, program, f"{flag} must be a finite number")
    assert not out.exists()


def test_generate_refuses_a_nan_truncation_in_one_line(tmp_path):
    r = run_runner("generate", "--seeds=0-1", "--trunc=nan", "--resolution=16", "--cfg=small",
                   f"--outdir={tmp_path / 'out'}")
    assert_one_line(r, "generate", "psi must be finite")
    assert not (tmp_path / "out").exists()
