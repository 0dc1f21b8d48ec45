"""The benchmark program: training speed over whole lazy-regularization cycles, its case grid, and
the runner's one-line errors."""

import os
import subprocess
import sys

import pytest

from tf_stylegan2 import benchmark

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def tiny(**kw):
    """The 'small' preset at 16 px (builtin shapes16) narrowed to 16 channels: seconds per case."""
    return benchmark.TrainingCase(16, 4, channel_base=64, channel_max=16, latent_dim=16, **kw)


def run(*args):
    return subprocess.run([sys.executable, "-m", "runners.benchmark", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


def test_training_speed_times_whole_regularization_cycles():
    before = os.environ.get("TF_STYLEGAN2_OPS")
    r = benchmark.training_speed(tiny(), iters=2)
    assert r.sec_per_kimg > 0
    assert r.cycle_minibatches == 16 and r.warmup_minibatches == 17  # NVIDIA's Greg every 4, Dreg every 16
    # What the optimizers did in each timed cycle: Gmain 16 + Greg 4 steps of G, Dmain 16 + Dreg 1 of D.
    assert r.cycle_steps == ((20, 17), (20, 17))
    assert len(r.cycle_seconds) == 2 and min(r.cycle_seconds) > 0
    # The median of two cycles is the longer one: sec/kimg = its time over 16 minibatches of 4.
    assert r.sec_per_kimg == pytest.approx(max(r.cycle_seconds) / (16 * 4) * 1000)
    assert os.environ.get("TF_STYLEGAN2_OPS") == before  # the ops selection does not leak


def test_training_config_applies_batch_and_widths():
    cfg = benchmark.training_config(tiny())
    assert cfg.train.batch_size == 4 and cfg.G.img_resolution == 16
    assert (cfg.G.channel_base, cfg.G.channel_max, cfg.G.z_dim, cfg.G.w_dim) == (64, 16, 16, 16)
    assert (cfg.D.channel_base, cfg.D.channel_max) == (64, 16)
    default = benchmark.training_config(benchmark.TrainingCase(32, 32))
    assert (default.preset, default.G.channel_base, default.G.channel_max, default.G.z_dim) == ("small", 2048, 128, 128)


def test_training_cases_grid():
    cases = benchmark.training_cases([32, 64], 32, ["fp32", "mixed_bfloat16"], [False, True], ["ref", "custom"])
    assert len(cases) == 2 * 2 * 3  # XLA with the compiled kernels is skipped
    assert not any(c.jit and c.ops == "custom" for c in cases)
    assert {c.policy for c in cases} == {"float32", "mixed_bfloat16"} and {c.preset for c in cases} == {"small"}
    assert cases[0] == benchmark.TrainingCase(32, 32, "small", "float32", False, "ref")
    with pytest.raises(ValueError, match="unknown ops implementation"):
        benchmark.training_cases([32], 32, ["fp32"], [False], ["fast"])
    with pytest.raises(ValueError, match="unknown preset"):
        benchmark.training_cases([32], 32, ["fp32"], [False], ["ref"], preset="nope")
    with pytest.raises(ValueError, match="resolution 128 is not one of"):
        benchmark.training_cases([128], 32, ["fp32"], [False], ["ref"])
    with pytest.raises(ValueError, match="XLA"):
        benchmark.training_speed(tiny(jit=True, ops="custom"))
    augmented = benchmark.training_cases([32], 32, ["fp32"], [False], ["ref"], augments=[None, "bgc"])
    assert [c.augment for c in augmented] == [None, "bgc"]
    train = benchmark.training_config(augmented[1]).train
    assert (train.augment_pipe, train.augment_p, train.ada_target) == ("bgc", 1.0, None)  # fixed p = 1
    with pytest.raises(ValueError, match="unknown augmentation pipeline"):
        benchmark.training_cases([32], 32, ["fp32"], [False], ["ref"], augments=["bgx"])


def test_runner_bad_input_is_one_line_and_exit_2():
    for args, message in [
        (["--what=training,nope"], "unknown benchmark(s) ['nope']; expected: generator, training"),
        (["--what=training", "--jit=maybe"], "--jit: expected true or false, got 'maybe'"),
        (["--what=training", "--ops=fast"], "unknown ops implementation 'fast'"),
    ]:
        r = run(*args)
        assert r.returncode == 2, (args, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0] and lines[0].startswith("benchmark.py: error:"), r.stderr
        assert "|" not in r.stdout  # nothing ran
