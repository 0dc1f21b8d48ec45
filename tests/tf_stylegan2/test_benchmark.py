"""The benchmark program: the FLOP counter against hand counts, training speed over whole
lazy-regularization cycles, its case grid, the side-by-side worker protocol, the peer's skip
reasons and the runner's one-line errors."""

import os
import subprocess
import sys

import pytest
import tensorflow as tf

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
    cases = benchmark.training_cases([32, 64], [32], ["fp32", "mixed_bfloat16"], [False, True], ["ref", "custom"])
    assert len(cases) == 2 * 2 * 3  # XLA with the compiled kernels is skipped
    assert not any(c.jit and c.ops == "custom" for c in cases)
    assert {c.policy for c in cases} == {"float32", "mixed_bfloat16"} and {c.preset for c in cases} == {"small"}
    assert cases[0] == benchmark.TrainingCase(32, 32, "small", "float32", False, "ref")
    with pytest.raises(ValueError, match="unknown ops implementation"):
        benchmark.training_cases([32], [32], ["fp32"], [False], ["fast"])
    with pytest.raises(ValueError, match="unknown preset"):
        benchmark.training_cases([32], [32], ["fp32"], [False], ["ref"], preset="nope")
    with pytest.raises(ValueError, match="resolution"):
        benchmark.training_cases([48], [32], ["fp32"], [False], ["ref"])
    assert len(benchmark.training_cases([128], [4, 8], ["fp32"], [False], ["ref"])) == 2
    with pytest.raises(ValueError, match="XLA"):
        benchmark.training_speed(tiny(jit=True, ops="custom"))
    augmented = benchmark.training_cases([32], [32], ["fp32"], [False], ["ref"], augments=[None, "bgc"])
    assert [c.augment for c in augmented] == [None, "bgc"]
    train = benchmark.training_config(augmented[1]).train
    assert (train.augment_pipe, train.augment_p, train.ada_target) == ("bgc", 1.0, None)  # fixed p = 1
    with pytest.raises(ValueError, match="unknown augmentation pipeline"):
        benchmark.training_cases([32], [32], ["fp32"], [False], ["ref"], augments=["bgx"])


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


def _conv_dense_graph():
    """A conv 3x3 (2 -> 4 channels, stride 2, 8x8 -> 4x4) then a dense 64 -> 5 in a function of its
    own, differentiated for the input and both weights: the training graphs' op kinds."""
    w_conv = tf.Variable(tf.random.normal([3, 3, 2, 4]))
    w_dense = tf.Variable(tf.random.normal([64, 5]))

    @tf.function
    def dense(h):
        return tf.matmul(tf.reshape(h, [1, 64]), w_dense)

    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(dense(tf.nn.conv2d(x, w_conv, strides=2, padding="SAME")))
        return tape.gradient(loss, [x, w_conv, w_dense])

    return step.get_concrete_function(tf.zeros([1, 8, 8, 2])).graph


def test_graph_flops_matches_a_hand_count():
    # Forward: conv 2 * (3*3*2) MACs per output element * (4*4*4) elements = 2304; the dense layer
    # 2 * 64 * 5 = 640. Backward: each product has two gradients of its forward cost (input and
    # filter of the conv, dA = dY B^T and dB = A^T dY of the matmul): 3 x (2304 + 640) in all.
    assert benchmark.graph_flops(_conv_dense_graph()) == 3 * (2304 + 640)
    forward = tf.function(lambda x: tf.nn.conv2d(x, tf.ones([3, 3, 2, 4]), 2, "SAME")).get_concrete_function(
        tf.zeros([1, 8, 8, 2])).graph
    assert benchmark.graph_flops(forward) == 2304
    # Elementwise and depthwise (FIR filter) ops are not counted.
    depthwise = tf.function(lambda x: tf.nn.depthwise_conv2d(x * 2, tf.ones([3, 3, 2, 1]), [1, 1, 1, 1], "SAME"))
    assert benchmark.graph_flops(depthwise.get_concrete_function(tf.zeros([1, 8, 8, 2])).graph) == 0


def test_graph_flops_refuses_a_shape_it_cannot_know():
    fn = tf.function(lambda x: tf.matmul(x, tf.ones([3, 3])))
    with pytest.raises(ValueError, match="not static"):
        benchmark.graph_flops(fn.get_concrete_function(tf.TensorSpec([None, 3])).graph)


def test_side_by_side_runs_a_worker_and_reports_a_skipped_side():
    spec = benchmark.matmul_spec("float32", n=64, iters=3)
    sides = [benchmark.our_side("ours", spec), benchmark.Side("peer", skipped="no torch")]
    ours, peer = benchmark.side_by_side(sides, rounds=2)
    assert ours.error is None and len(ours.seconds) == 2 and min(ours.seconds) > 0
    assert ours.ready["flops_per_unit"] == 2 * 64**3 * 3
    assert 100 < ours.peak_rss_mib < 8192  # TensorFlow's process, in MiB
    assert peer.error == "no torch" and peer.seconds == [] and peer.median is None


def test_peer_problem_says_why_the_peer_is_skipped(tmp_path):
    assert "not a stylegan2-ada-pytorch checkout" in benchmark.peer_problem(str(tmp_path), sys.executable)
    (tmp_path / "training").mkdir()
    (tmp_path / "training" / "networks.py").write_text("")
    python = tmp_path / "python"  # a Python without torch, whatever this venv holds
    python.write_text(f"#!/bin/sh\nexec {sys.executable} -c 'import no_torch_here' \"$@\"\n")
    python.chmod(0o755)
    assert "torch does not import" in benchmark.peer_problem(str(tmp_path), str(python))
    assert "cannot run" in benchmark.peer_problem(str(tmp_path), str(tmp_path / "missing"))
