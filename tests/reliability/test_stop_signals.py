"""SIGINT and SIGTERM: the checkpoint being written is finished (or, at a second signal,
abandoned), the program ends with one line and 128 + the signal's number, and what a killed
attempt left half-written is removed when training starts again."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf
from reliability_helpers import ROOT, TINY, assert_one_line, partial_files, run_runner, start_runner, wait_for

from tf_stylegan2 import checkpoint
from tf_stylegan2.fileio import Interrupted, atomic_path, stop_on_signals, uninterrupted


def test_a_stop_signal_raises_where_the_program_is():
    before = signal.getsignal(signal.SIGTERM)
    for signum in (signal.SIGINT, signal.SIGTERM):
        with stop_on_signals():
            with pytest.raises(Interrupted) as e:
                os.kill(os.getpid(), signum)
                time.sleep(10)  # the handler interrupts the sleep
        assert e.value.signum == signum and str(e.value) == f"interrupted by {signal.Signals(signum).name}"
        assert isinstance(e.value, KeyboardInterrupt)  # not caught by `except Exception`
    assert signal.getsignal(signal.SIGTERM) == before  # the handlers are put back


def test_an_uninterrupted_section_finishes_first_and_a_second_signal_cuts_it_short():
    steps = []
    with stop_on_signals():
        with pytest.raises(Interrupted):
            with uninterrupted():
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(0.05)
                steps.append("finished")
        assert steps == ["finished"]
        with pytest.raises(Interrupted):
            with uninterrupted():
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(0.05)
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(10)
                steps.append("not reached")
    assert steps == ["finished"]


def test_a_directory_replacement_interrupted_between_its_renames_keeps_the_old_version(tmp_path, monkeypatch):
    target = tmp_path / "export"
    with atomic_path(str(target)) as tmp:
        os.makedirs(tmp)
        open(os.path.join(tmp, "f"), "w").write("old")
    rename, calls = os.rename, []

    def interrupted_rename(src, dst):
        calls.append(src)
        if len(calls) == 2:  # the old version is aside, the new one not yet in place
            raise Interrupted(signal.SIGTERM)
        rename(src, dst)

    monkeypatch.setattr(os, "rename", interrupted_rename)
    with pytest.raises(Interrupted):
        with atomic_path(str(target)) as tmp:
            os.makedirs(tmp)
            open(os.path.join(tmp, "f"), "w").write("new")
    assert (target / "f").read_text() == "old" and os.listdir(tmp_path) == ["export"]


def test_stale_temporaries_are_removed_and_nothing_else(tmp_path):
    run_dir = tmp_path / "run"
    stale = [run_dir / ".fakes000000008.png.partial-ab12cd34", run_dir / "checkpoints" / ".ckpt-000000040.partial-x1"]
    stray = run_dir / ".stats.jsonl.partial-0"  # a file, in case anything but atomic_path left one
    kept = [run_dir / ".hidden", run_dir / "checkpoints" / "ckpt-000000008", run_dir / "log.txt"]
    for path in stale + kept:
        os.makedirs(path)
    stray.write_text("")
    assert sorted(checkpoint.remove_partial_files(str(run_dir))) == sorted(map(str, stale + [stray]))
    assert all(p.exists() for p in kept) and not any(p.exists() for p in stale + [stray])


def slow_checkpoint(run_dir):
    return subprocess.Popen([sys.executable, os.path.join("tests", "reliability", "slow_checkpoint.py"),
                             f"--run_dir={run_dir}"], cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def restored(path):
    v = [tf.Variable(tf.zeros([1000]), name="w")]
    checkpoint.restore({"G": v}, str(path))
    return v[0].numpy()


@pytest.mark.parametrize("signals", [1, 2])
def test_a_signal_during_a_checkpoint_write_finishes_it_and_a_second_abandons_it(tmp_path, signals):
    run_dir = tmp_path / "run"
    proc = slow_checkpoint(run_dir)
    try:
        wait_for(str(run_dir / "writing"), proc, timeout=120)
        for _ in range(signals):
            proc.send_signal(signal.SIGINT)
            time.sleep(0.2)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    result = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    assert_one_line(result, "slow_checkpoint", "interrupted by SIGINT", status=128 + signal.SIGINT)
    assert "saved" not in out
    latest = checkpoint.latest(str(run_dir))
    if signals == 1:  # finished: the new checkpoint is complete and current
        assert os.path.basename(latest) == "ckpt-000000002"
        np.testing.assert_array_equal(restored(latest), np.arange(1000) + 1.0)
    else:  # abandoned: no trace of it, the previous one is current
        assert os.path.basename(latest) == "ckpt-000000001"
        assert sorted(os.listdir(run_dir / "checkpoints")) == ["ckpt-000000001", "latest"]
        np.testing.assert_array_equal(restored(latest), np.arange(1000))
    assert partial_files(run_dir) == []


def test_sigterm_stops_training_in_one_line_and_the_run_resumes(tmp_path):
    outdir = tmp_path / "runs"
    proc = start_runner("train", *TINY, f"--outdir={outdir}", "--kimg=2", "--tick=0.016", "--snap=1")
    try:
        wait_for(str(outdir / "0*" / "checkpoints" / "ckpt-000000008"), proc)  # the first snapshot
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    run_dir = str(next(outdir.iterdir()))
    result = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    line = assert_one_line(result, "train", "interrupted by SIGTERM at kimg ", f"; resume with --resume={run_dir} (from "
                           "ckpt-", status=128 + signal.SIGTERM)
    stopped_at = float(line.split("at kimg ")[1].split(";")[0])
    latest = checkpoint.latest(run_dir)
    assert line.endswith(f"(from {os.path.basename(latest)})") and stopped_at >= 0.008
    assert partial_files(run_dir) == []
    # What a SIGKILL could leave (no finally runs) is removed when the run resumes.
    os.makedirs(os.path.join(run_dir, "checkpoints", ".ckpt-000000999.partial-deadbeef"))
    open(os.path.join(run_dir, ".stats.jsonl.partial-0"), "w").close()
    resume_at = int(os.path.basename(latest).split("-")[1]) + 8
    r = run_runner("train", f"--resume={run_dir}", f"--kimg={resume_at / 1000}")
    assert r.returncode == 0, r.stderr[-3000:]
    assert partial_files(run_dir) == []
    assert os.path.basename(checkpoint.latest(run_dir)) == f"ckpt-{resume_at:09d}"
    with open(os.path.join(run_dir, "stats.jsonl")) as f:
        nimg = [json.loads(line)["cur_nimg"] for line in f]
    assert nimg == sorted(set(nimg)) and nimg[-1] == resume_at
