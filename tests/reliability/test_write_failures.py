"""A full disk, a read-only file system and a directory without write permission: every writer
(checkpoints, run directories, text, log lines, PNGs, .keras files, datasets, SavedModels) fails
with one line that names the directory and why (for a full disk the space free and, where known,
needed), and leaves what was there before intact, with no partial files. Training stopped by a
full disk says so in one line and keeps its last checkpoint."""

import functools
import hashlib
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from reliability_helpers import (ROOT, TINY, assert_one_line, fill, partial_files, run_runner, start_runner, tmpfs,
                                 wait_for)

from tf_stylegan2 import Generator, GeneratorConfig, MappingConfig, checkpoint
from tf_stylegan2.data.convert import ConvertOptions, convert_dataset
from tf_stylegan2.export.savedmodel import export_savedmodel
from tf_stylegan2.fileio import WriteError, append_line, atomic_path, write_text
from tf_stylegan2.images import save_png

HERE = os.path.dirname(os.path.abspath(__file__))


@functools.lru_cache(maxsize=None)
def tiny_generator():
    return Generator(GeneratorConfig(img_resolution=8, z_dim=4, w_dim=4, channel_base=32, channel_max=8,
                                     mapping=MappingConfig(num_layers=1)))


def _keras(path):
    with atomic_path(path) as tmp:
        tiny_generator().save(tmp)


def _run_directory(outdir, k):
    run_dir = checkpoint.new_run_dir(outdir, "run")
    checkpoint.write_run_options(run_dir, {"attempt": k})


def _log_line(directory, k):
    os.makedirs(directory, exist_ok=True)  # a run directory exists before its log does
    append_line(os.path.join(directory, "log.txt"), f"{k}" * 10000)  # more than the page a full tmpfs may have left


# Each writer writes into its own directory; k = 0 is the first (good) write, k = 1 the one that fails.
WRITERS = {
    "checkpoint": (lambda d, k: checkpoint.save({"G": [tf.Variable(tf.fill([20000], float(k)), name="w")]}, d,
                                                f"ckpt-00000000{k}"), 80000),
    "run directory": (lambda d, k: _run_directory(d, k), None),
    "text": (lambda d, k: write_text(os.path.join(d, "a.txt"), f"attempt {k}\n" * 1000), 10000),
    "log line": (lambda d, k: _log_line(d, k), 10001),
    "png": (lambda d, k: save_png(os.path.join(d, "a.png"),
                                  np.random.RandomState(k).randint(0, 256, [64, 64, 3]).astype(np.uint8)), None),
    "keras": (lambda d, k: _keras(os.path.join(d, "G.keras")), None),
    "dataset": (lambda d, k: convert_dataset("builtin:shapes16", os.path.join(d, "shapes.zip"),
                                             ConvertOptions(transform="none", max_images=8 + k), overwrite=True,
                                             log=lambda line: None), None),
    "savedmodel": (lambda d, k: export_savedmodel(tiny_generator(), os.path.join(d, "serving"), version=1,
                                                  overwrite=True), None),
}


def attempt_writes(root, k):
    """{writer: the WriteError's message, or what else happened} for every writer into root/<writer>."""
    out = {}
    for name, (write, _) in WRITERS.items():
        try:
            write(os.path.join(root, name), k)
            out[name] = "written"
        except WriteError as e:
            out[name] = str(e)
        except Exception as e:  # reported, so that the test shows it
            out[name] = f"{type(e).__name__}: {e}"
    return out


def digest(root):
    h = hashlib.sha256()
    for base, dirs, files in sorted(os.walk(root)):
        for name in sorted(files):
            if name != "filler":
                with open(os.path.join(base, name), "rb") as f:
                    h.update(os.path.join(base, name).encode() + f.read())
    return h.hexdigest()


# setpriv drops root's right to ignore permission bits (CAP_DAC_OVERRIDE and friends) for the
# program it starts, so a root-owned directory of mode 0555 refuses it as it refuses any user.
WITHOUT_OVERRIDE = ["setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner", "--"]


@pytest.mark.parametrize("condition", ["full", "read-only", "no permission"])
def test_every_writer_fails_in_one_line_and_keeps_what_was_there(tmp_path, condition):
    with tmpfs(tmp_path / "fs", "16m") as fs:
        assert set(attempt_writes(fs, 0).values()) == {"written"}
        before = digest(fs)
        if condition == "full":
            fill(fs)
            results = attempt_writes(fs, 1)
        elif condition == "read-only":
            subprocess.run(["mount", "-o", "remount,ro", fs], check=True)
            results = attempt_writes(fs, 1)
        else:
            subprocess.run(["chmod", "-R", "a-w", fs], check=True)
            code = f"import json, sys; sys.path.insert(0, {HERE!r}); import test_write_failures as t; " \
                   f"print(json.dumps(t.attempt_writes({fs!r}, 1)))"
            r = subprocess.run([*WITHOUT_OVERRIDE, sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                               text=True, timeout=600)
            if r.returncode and "setpriv" in r.stderr:
                pytest.skip(f"setpriv cannot drop capabilities here: {r.stderr.strip()}")
            results = json.loads(r.stdout.strip().splitlines()[-1])
        for name, message in results.items():
            where = os.path.join(fs, name)
            assert message.startswith("cannot write ") and "\n" not in message, (name, message)
            directory = re.escape(where) + r"(/\S+)?"  # the writer's directory or one it made below
            reason = {"full": f"no space left on device in {directory} \\(",
                      "read-only": f"{directory} is on a read-only file system$",
                      "no permission": f"no permission to write in {directory}$"}[condition]
            assert re.search(reason, message), (name, message)
            needed = WRITERS[name][1]
            if condition == "full" and needed:
                assert message.endswith(" needed)") and " free, " in message, message
        assert digest(fs) == before  # the first writes are intact
        assert partial_files(fs) == []
        latest = checkpoint.latest(os.path.join(fs, "checkpoint"))
        v = [tf.Variable(tf.ones([20000]), name="w")]
        checkpoint.restore({"G": v}, latest)
        np.testing.assert_array_equal(v[0].numpy(), 0.0)  # the last good checkpoint loads


def test_a_runner_without_write_permission_fails_in_one_line(tmp_path):
    locked = tmp_path / "locked"
    os.makedirs(locked, mode=0o555)
    r = run_runner("generate", "--seeds=0", "--resolution=8", "--cfg=small", f"--outdir={locked / 'out'}",
                   prefix=WITHOUT_OVERRIDE)
    if r.returncode and "setpriv" in r.stderr:
        pytest.skip(f"setpriv cannot drop capabilities here: {r.stderr.strip()}")
    assert_one_line(r, "generate", f"cannot write {locked / 'out' / 'seed0000.png'}: no permission to write in {locked}")
    assert os.listdir(locked) == []


def test_training_stopped_by_a_full_disk_keeps_its_checkpoint(tmp_path):
    with tmpfs(tmp_path / "fs", "64m") as fs:
        proc = start_runner("train", *TINY, f"--outdir={fs}", "--kimg=2", "--tick=0.016", "--snap=1")
        try:
            found = wait_for(os.path.join(fs, "0*", "checkpoints", "latest"), proc)  # the first checkpoint is complete
            # A snapshot is written before its tick's line (the line carries the snapshot's metrics):
            # wait for that line too, so that there is a stats.jsonl whose lines the full disk must not tear.
            wait_for(os.path.join(fs, "0*", "stats.jsonl"), proc)
            fill(fs)
            out, err = proc.communicate(timeout=300)
        finally:
            proc.kill()
        run_dir = os.path.dirname(os.path.dirname(found[0]))
        line = assert_one_line(subprocess.CompletedProcess(proc.args, proc.returncode, out, err), "train",
                               "no space left on device in ", f"; resume with --resume={run_dir} (from ckpt-")
        latest = checkpoint.latest(run_dir)
        assert line.endswith(f"(from {os.path.basename(latest)})")
        assert checkpoint.load_generator(latest).img_resolution == 16
        assert partial_files(fs) == []
        with open(os.path.join(run_dir, "stats.jsonl")) as f:
            [json.loads(line) for line in f]  # no torn line
        # (test_stop_signals.py resumes a stopped run.)
