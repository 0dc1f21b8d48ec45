"""What the reliability tests share: running a runner, the one-line error contract, small file
systems (tmpfs) to fill or make read-only, and finding partial files."""

import contextlib
import glob
import os
import re
import subprocess
import sys
import time

import pytest

from tf_stylegan2.fileio import PARTIAL

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# A 16x16 network of about 100k parameters per side: a minibatch of 8 takes ~30 ms on two cores.
TINY = ["--data=builtin:shapes16", "--cfg=small", "--cbase=256", "--cmax=32", "--batch=8"]


def run_runner(program, *args, prefix=(), timeout=600):
    """Runs ``python -m runners.<program> args`` (after the command ``prefix``, e.g. setpriv)."""
    return subprocess.run([*prefix, sys.executable, "-m", f"runners.{program}", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


def start_runner(program, *args):
    return subprocess.Popen([sys.executable, "-m", f"runners.{program}", *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


# TensorFlow's C++ log lines, e.g. the grappler notice "E0000 ... meta_optimizer.cc:967] remapper
# failed" that every training run prints when it traces the R1 step: not output of ours.
TF_LOG_LINE = re.compile(r"^[IWEF]\d{4} [\d:.]+\s+\d+ [\w./-]+:\d+\] ")


def assert_one_line(result, program, *phrases, status=2):
    """The contract of every failure: exit ``status``, one stderr line ``<program>.py: error: ...``
    holding each phrase (besides TensorFlow's own C++ log lines). Returns the line."""
    lines = [line for line in result.stderr.strip().splitlines() if not TF_LOG_LINE.match(line)]
    assert result.returncode == status, (result.returncode, result.stderr[-3000:])
    assert len(lines) == 1 and lines[0].startswith(f"{program}.py: error: "), result.stderr[-3000:]
    for phrase in phrases:
        assert phrase in lines[0], (phrase, lines[0])
    return lines[0]


def partial_files(directory):
    """Temporaries of atomic writes anywhere under ``directory``."""
    return [os.path.join(root, name) for root, dirs, files in os.walk(str(directory)) for name in dirs + files
            if PARTIAL in name]


@contextlib.contextmanager
def tmpfs(path, size="1m", read_only=False):
    """A tmpfs of ``size`` mounted at ``path`` (a test is skipped where mounting is not permitted)."""
    os.makedirs(path, exist_ok=True)
    options = f"size={size}" + (",ro" if read_only else "")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root and CAP_SYS_ADMIN): {r.stderr.strip()}")
    try:
        yield str(path)
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def fill(directory):
    """Writes a file into ``directory`` until its file system is full; returns the file's path."""
    path = os.path.join(str(directory), "filler")
    with open(path, "wb", buffering=0) as f:
        for chunk in (1 << 20, 1 << 12):
            try:
                while True:
                    f.write(bytes(chunk))
            except OSError:
                pass
    return path


def wait_for(pattern, proc, timeout=300):
    """Waits until a file matching ``pattern`` exists while ``proc`` runs."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = glob.glob(pattern)
        if found:
            return found
        assert proc.poll() is None, proc.stderr.read()[-3000:]
        time.sleep(0.1)
    raise AssertionError(f"{pattern} did not appear within {timeout} s")
