"""runners.train end to end: the run directory, learning on the embedded dataset, resuming after
SIGKILL, divergence, and bad input (one line, exit status 2, nothing written or overwritten)."""

import dataclasses
import glob
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from tf_stylegan2.checkpoint import load_generator
from tf_stylegan2.data import DatasetInfo
from tf_stylegan2.fileio import UserError
from tf_stylegan2.train.options import TrainOptions, define_flags, from_flags, resolve_config

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# A 16x16 network of about 100k parameters per side: a minibatch of 8 takes ~30 ms on two cores.
TINY = ["--data=builtin:shapes16", "--cfg=small", "--cbase=256", "--cmax=32", "--batch=8", "--mirror"]


def train(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "runners.train", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def run_dir_of(outdir):
    runs = sorted(glob.glob(os.path.join(str(outdir), "0*")))
    assert len(runs) == 1, runs
    return runs[0]


def jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def tree_digest(path):
    digest = hashlib.sha256()
    for name in sorted(glob.glob(os.path.join(path, "**"), recursive=True)):
        if os.path.isfile(name):
            digest.update(name.encode())
            with open(name, "rb") as f:
                digest.update(f.read())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    outdir = tmp_path_factory.mktemp("train")
    r = train(*TINY, f"--outdir={outdir}", "--kimg=0.4", "--tick=0.1", "--snap=2", "--metrics=fd2k_clf,acc2k_clf")
    assert r.returncode == 0, r.stderr[-3000:]
    return run_dir_of(outdir), r.stdout


def test_run_directory_holds_options_progress_snapshots(finished_run):
    run_dir, stdout = finished_run
    assert os.path.basename(run_dir) == "00000-shapes16-mirror-small-b8"
    options = json.load(open(os.path.join(run_dir, "training_options.json")))
    assert options["options"]["kimg"] == 0.4 and options["config"]["train"]["batch_size"] == 8
    assert options["config"]["G"]["channel_base"] == 256 and options["num_replicas"] == 1
    # flags.txt holds the same options as flags.
    flags = dict(line.split("=", 1) if "=" in line else (line, None)
                 for line in open(os.path.join(run_dir, "flags.txt")).read().split())
    assert flags["--cbase"] == "256" and flags["--metrics"] == "fd2k_clf,acc2k_clf"
    assert "--mirror" in flags and "--nocond" in flags

    stats = jsonl(os.path.join(run_dir, "stats.jsonl"))
    nimg = [s["cur_nimg"] for s in stats]
    assert nimg[0] == 8 and nimg == sorted(set(nimg)) and nimg[-1] == 400  # tick 0 is the first minibatch
    for key in ["Loss/G/loss", "Loss/D/loss", "Loss/scores/fake", "Loss/scores/real", "Timing/sec_per_kimg",
                "Timing/img_per_sec", "Progress/G_lr", "Resources/peak_cpu_mem_gb", "Progress/augment",
                "Loss/signs/real"]:
        assert all(np.isfinite(s[key]) for s in stats), key
    assert all(-1 <= s["Loss/signs/real"] <= 1 and 0 <= s["Progress/augment"] <= 1 for s in stats)
    train_cfg = options["config"]["train"]  # ADA by default, as in stylegan2-ada
    assert (train_cfg["augment_pipe"], train_cfg["ada_target"], train_cfg["ada_kimg"]) == ("bgc", 0.6, 500)
    assert any("Loss/pl_length" in s for s in stats) and any("Loss/r1_penalty" in s for s in stats)
    assert stats[0]["Progress/G_lr"] == pytest.approx(0.0025 * 4 / 5)  # auto's lr, lazy-adjusted
    assert "tick 0" in stdout and "sec/kimg" in stdout and "ETA" in stdout and "img/s" in stdout
    # No ETA from tick 0 (one minibatch, tracing every phase); after it one that is never negative,
    # 0s at the last tick (its minibatch may overshoot the length).
    etas = re.findall(r"^tick +\d+ .*? ETA (\S+)", stdout, re.M)
    assert etas[0] == "-" and len(etas) == 5 and etas[-1] == "0s" and not any(e.startswith("-") for e in etas[1:])
    assert "augment 0.0" in stdout and " rt " in stdout

    snapshots = sorted(glob.glob(os.path.join(run_dir, "network-snapshot-*.keras")))
    assert [os.path.basename(p) for p in snapshots] == [
        "network-snapshot-000000008.keras", "network-snapshot-000000216.keras", "network-snapshot-000000400.keras"]
    fakes = np.asarray(Image.open(os.path.join(run_dir, "fakes000000400.png")))
    assert fakes.shape == (64, 128, 3)  # cell by cell as reals.png: 4 classes x 8 images of 16 px
    assert np.asarray(Image.open(os.path.join(run_dir, "reals.png"))).shape == (64, 128, 3)
    assert open(os.path.join(run_dir, "checkpoints", "latest")).read().strip() == "ckpt-000000400"
    assert len(glob.glob(os.path.join(run_dir, "checkpoints", "ckpt-*"))) == 3  # --keep


def test_tensorboard_holds_every_loss_term_and_images(finished_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(finished_run[0], size_guidance={"tensors": 0})
    events.Reload()
    tags = set(events.Tags()["tensors"])
    for tag in ["Loss/G/loss", "Loss/G/reg", "Loss/pl_length", "Loss/pl_mean", "Loss/D/loss", "Loss/D/reg",
                "Loss/r1_penalty", "Progress/G_lr", "Progress/D_lr", "Timing/sec_per_kimg", "Timing/img_per_sec",
                "Resources/peak_cpu_mem_gb", "Metrics/fd2k_clf", "Metrics/acc2k_clf", "fakes", "Progress/augment", "Loss/signs/real"]:
        assert tag in tags, tag
    assert [e.step for e in events.Tensors("Metrics/fd2k_clf")] == [8, 216, 400]
    assert [e.step for e in events.Tensors("Metrics/acc2k_clf")] == [8, 216, 400]


def test_it_learns_the_embedded_dataset(finished_run):
    """Fréchet distance in the feature space of a classifier trained on the dataset: after 400
    images it is a fraction of what it is after the first minibatch."""
    records = jsonl(os.path.join(finished_run[0], "metric-fd2k_clf.jsonl"))
    fd = [m["results"]["fd2k_clf"] for m in records]
    assert len(fd) == 3
    # stylegan2-ada's record per snapshot; the same values in the snapshot ticks' stats.jsonl lines.
    assert [m["snapshot_pkl"] for m in records] == [f"network-snapshot-{n:09d}.keras" for n in (8, 216, 400)]
    stats = [s for s in jsonl(os.path.join(finished_run[0], "stats.jsonl")) if "Metrics/fd2k_clf" in s]
    assert [s["Metrics/fd2k_clf"] for s in stats] == fd and [s["cur_nimg"] for s in stats] == [8, 216, 400]
    assert fd[-1] < 0.5 * fd[0], fd
    # The second number, beside it in the snapshot line and stats.jsonl: the fraction of G_ema's
    # images the classifier puts in one class with confidence > 0.9 (unconditional).
    acc = [m["results"]["acc2k_clf"] for m in jsonl(os.path.join(finished_run[0], "metric-acc2k_clf.jsonl"))]
    assert [s["Metrics/acc2k_clf"] for s in stats] == acc
    assert re.search(r"snapshot network-snapshot-000000400.keras  fd2k_clf [\d.]+  acc2k_clf [\d.]+", finished_run[1])
    print("fd2k_clf", fd, "acc2k_clf", acc)


def test_snapshots_load_everywhere(finished_run):
    run_dir = finished_run[0]
    snapshot = load_generator(os.path.join(run_dir, "network-snapshot-000000400.keras"))
    from_checkpoint = load_generator(os.path.join(run_dir, "checkpoints", "ckpt-000000400"))
    newest = load_generator(run_dir)  # a run directory means its newest snapshot
    for other in (from_checkpoint, newest):
        for a, b in zip(snapshot.weights, other.weights):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert snapshot.dtype_policy.name == "float32" and snapshot.img_resolution == 16
    # The exporter takes a training checkpoint like any other network.
    base = os.path.join(os.path.dirname(run_dir), "serving")
    r = subprocess.run([sys.executable, "-m", "runners.export_savedmodel",
                        f"--network={os.path.join(run_dir, 'checkpoints', 'ckpt-000000400')}", f"--model_base={base}"],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert os.path.exists(os.path.join(base, "1", "saved_model.pb"))


def _wait_for(path_pattern, proc, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if glob.glob(path_pattern):
            return
        assert proc.poll() is None, proc.stderr.read()[-3000:]
        time.sleep(0.2)
    raise AssertionError(f"{path_pattern} did not appear within {timeout} s")


def test_resume_after_sigkill_continues_the_same_run(tmp_path):
    args = [*TINY, "--kimg=0.48", "--tick=0.04", "--snap=2", "--keep=2"]
    reference = train(*args, f"--outdir={tmp_path / 'reference'}")
    assert reference.returncode == 0, reference.stderr[-3000:]

    outdir = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "runners.train", *args, f"--outdir={outdir}"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(str(outdir / "0*" / "checkpoints" / "ckpt-000000168"), proc, 300)  # the third snapshot
        time.sleep(0.5)  # mid-step, between snapshots
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    run_dir = run_dir_of(outdir)
    killed_at = jsonl(os.path.join(run_dir, "stats.jsonl"))[-1]["cur_nimg"]
    latest = open(os.path.join(run_dir, "checkpoints", "latest")).read().strip()
    checkpoint_nimg = int(latest.split("-")[1])
    assert killed_at - checkpoint_nimg <= 2 * 40 + 8  # lost at most one snapshot interval (2 ticks)

    resumed = train(f"--resume={run_dir}")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"Resuming {run_dir} from {os.path.join(run_dir, 'checkpoints', latest)}" in resumed.stdout
    stats = jsonl(os.path.join(run_dir, "stats.jsonl"))
    nimg = [s["cur_nimg"] for s in stats]
    assert nimg == sorted(set(nimg)) and nimg[-1] == 480  # one curve, no repeated or missing stretch
    assert checkpoint_nimg + 8 in nimg  # the resumed run's first tick follows the checkpoint
    # Every random number is a function of the seed and the position, so the resumed run ends where
    # the uninterrupted one does.
    ref_dir = run_dir_of(tmp_path / "reference")
    # ADA's p (on by default) continues from the checkpoint: the same curve as without the kill.
    # The resumed run starts its ticks again at the checkpoint, so the two runs share the ticks up to
    # it and the last one: p must agree at each of those.
    ref_p = {s["cur_nimg"]: s["Progress/augment"] for s in jsonl(os.path.join(ref_dir, "stats.jsonl"))}
    got_p = {s["cur_nimg"]: s["Progress/augment"] for s in stats}
    shared = sorted(set(ref_p) & set(got_p))
    assert ref_p[480] > 0 and 480 in shared and len(shared) >= 4  # it rose, so a p restarted from 0 would show
    np.testing.assert_allclose([got_p[n] for n in shared], [ref_p[n] for n in shared], atol=1e-7)
    a = load_generator(os.path.join(ref_dir, "network-snapshot-000000480.keras"))
    b = load_generator(os.path.join(run_dir, "network-snapshot-000000480.keras"))
    assert max(float(np.max(np.abs(x.numpy() - y.numpy()))) for x, y in zip(a.weights, b.weights)) < 1e-4


def test_divergence_stops_and_keeps_the_last_good_checkpoint(finished_run, tmp_path):
    import shutil

    run_dir = str(tmp_path / "run")
    shutil.copytree(finished_run[0], run_dir)
    before = tree_digest(os.path.join(run_dir, "checkpoints"))
    snapshots = sorted(glob.glob(os.path.join(run_dir, "*.keras")))
    r = train(f"--resume={run_dir}", "--kimg=0.6", "--glr=1e30")
    assert r.returncode == 2, r.stderr[-3000:]
    line = r.stderr.strip().splitlines()[-1]
    assert line.startswith("train.py: error:") and "NaN or Inf" in line and "ckpt-000000400" in line, line
    assert tree_digest(os.path.join(run_dir, "checkpoints")) == before
    assert sorted(glob.glob(os.path.join(run_dir, "*.keras"))) == snapshots


def _write_png(path, size, mode="RGB"):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(np.zeros([size, size, 3], np.uint8)).convert(mode).save(path)


@pytest.mark.parametrize("case", ["missing", "empty", "mixed_sizes", "cfg", "cond", "metric", "weights",
                                  "weights_file", "kimg", "mbstd",
                                  "p_range", "p_without_fixed", "fixed_without_p", "augpipe", "augpipe_noaug",
                                  "target", "freezed_negative", "freezed_too_many"])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, case):
    data = tmp_path / "data"
    os.makedirs(data)
    args, message = {
        "missing": ([f"--data={tmp_path / 'nowhere'}"], "does not exist"),
        "empty": ([f"--data={data}"], "contains no images"),
        "mixed_sizes": ([f"--data={data}"], "mixed image sizes"),
        "cfg": (["--cfg=nope"], "unknown --cfg 'nope'"),
        "cond": ([f"--data={data}", "--cond"], "--cond needs labels"),
        "metric": (["--metrics=fid50"], "unknown metric 'fid50'"),
        "weights": (["--metrics=fid2k_full,kid2k_full"], "fid2k_full, kid2k_full need the inception weights"),
        "weights_file": (["--metrics=fid2k_full", f"--inception={data / 'x.pth'}"], "cannot read Inception weights"),
        "kimg": (["--kimg=-1"], "--kimg must be > 0"),
        "mbstd": (["--data=builtin:shapes16", "--batch=6", "--mbstd_group=4"], "not divisible by the minibatch-std"),
        "p_range": (["--aug=fixed", "--p=1.5"], "--p must lie in [0, 1], got 1.5"),
        "p_without_fixed": (["--p=0.5"], "--p can only be given with --aug=fixed (not --aug=ada)"),
        "fixed_without_p": (["--aug=fixed"], "--aug=fixed requires --p"),
        "augpipe": (["--augpipe=bgcx"], "unknown --augpipe 'bgcx'; expected one of blit, geom"),
        "augpipe_noaug": (["--aug=noaug", "--augpipe=bgc"], "--augpipe cannot be given with --aug=noaug"),
        "target": (["--target=1.2"], "--target must lie in [0, 1]"),
        "freezed_negative": (["--freezed=-1"], "--freezed must be >= 0, got -1"),
        # At 16 px, D's blocks b16 (fromrgb, conv0, conv1, skip) and b8 (conv0, conv1, skip).
        "freezed_too_many": ([*TINY, "--freezed=8"], "--freezed=8: D has 7 layers that Freeze-D can freeze"),
    }[case]
    if case == "mixed_sizes":
        _write_png(str(data / "a.png"), 8)
        _write_png(str(data / "b.png"), 16)
    if case == "cond":
        _write_png(str(data / "a.png"), 8)
    if case == "weights_file":
        (data / "x.pth").write_bytes(b"PK\x03\x04 not really a torch file")
    outdir = tmp_path / "runs"
    r = train(*args, f"--outdir={outdir}")
    assert r.returncode == 2, r.stderr[-3000:]
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("train.py: error:") and message in lines[0], r.stderr
    assert not outdir.exists()


def test_resume_refuses_another_configuration(finished_run, tmp_path):
    import shutil

    run_dir = str(tmp_path / "run")
    shutil.copytree(finished_run[0], run_dir)
    r = train(f"--resume={run_dir}", "--cbase=512")
    assert r.returncode == 2 and "--cbase=512 differs from the resumed run's --cbase=256" in r.stderr, r.stderr
    # A checkpoint of another configuration put in the run's place: refused by its manifest.
    other = tmp_path / "other"
    assert train(*TINY, "--cbase=128", "--kimg=0.008", f"--outdir={other}").returncode == 0
    foreign = os.path.join(run_dir_of(other), "checkpoints", "ckpt-000000008")
    shutil.rmtree(os.path.join(run_dir, "checkpoints"))
    os.makedirs(os.path.join(run_dir, "checkpoints"))
    shutil.copytree(foreign, os.path.join(run_dir, "checkpoints", "ckpt-000000008"))
    with open(os.path.join(run_dir, "checkpoints", "latest"), "w") as f:
        f.write("ckpt-000000008\n")
    before = tree_digest(run_dir)
    r = train(f"--resume={run_dir}")
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and "holds another configuration's G" in lines[0], r.stderr
    assert tree_digest(run_dir) == before


def test_flags_are_the_options_and_flagfiles_read_back(tmp_path):
    """Every TrainOptions field is a flag with the field's default; a run's flags.txt, read back with
    --flagfile (later flags overriding), gives the same options, each counted as given."""
    from absl import flags

    def parse(*args):
        flag_values = flags.FlagValues()
        define_flags(flag_values)
        flag_values(["train.py", *args])
        return from_flags(flag_values)

    assert parse() == (TrainOptions(), {})
    options = TrainOptions(outdir=str(tmp_path), cfg="small", mirror=True, batch=8, gamma=0.5, kimg=0.1 + 0.2,
                           metrics=("fd2k_clf", "kid2k_clf"), precision="mixed", tick=1e-3)
    path = tmp_path / "flags.txt"
    path.write_text(options.to_flagfile())
    read, given = parse(f"--flagfile={path}", "--outdir=elsewhere", "--keep=5")
    assert read == dataclasses.replace(options, outdir="elsewhere", keep=5)
    assert given["kimg"] == 0.1 + 0.2 and given["metrics"] == ("fd2k_clf", "kid2k_clf") and given["keep"] == 5
    assert "glr" not in given  # None (the preset's value) is not written
    assert TrainOptions.from_dict(json.loads(json.dumps(options.to_dict()))) == options  # training_options.json


def test_batch_must_divide_over_replicas():
    info = DatasetInfo("d", "d", 100, 16, 3, 0)
    with pytest.raises(UserError, match=r"--batch=6 is not divisible by the number of replicas \(4\)"):
        resolve_config(TrainOptions(cfg="small", batch=6), info, num_replicas=4)
    cfg = resolve_config(TrainOptions(cfg="small", batch=8), info, num_replicas=4)
    assert cfg.train.batch_size == 8


def test_resume_point_is_the_latest_or_the_given_checkpoint(finished_run):
    from tf_stylegan2.train.loop import _resume_point

    run_dir = os.path.abspath(finished_run[0])
    checkpoints = os.path.join(run_dir, "checkpoints")
    assert _resume_point(run_dir) == (run_dir, os.path.join(checkpoints, "ckpt-000000400"))
    older = os.path.join(checkpoints, "ckpt-000000216")
    assert _resume_point(older) == (run_dir, older)
    with pytest.raises(UserError, match="no such checkpoint"):
        _resume_point(os.path.join(checkpoints, "ckpt-000000999"))
