"""Data-parallel training: two replicas compute what one does with the whole batch, and a
two-process MultiWorkerMirroredStrategy run on 127.0.0.1 keeps both workers' weights identical."""

import json
import os
import socket
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def run_script(args, env=None, timeout=600):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)


def test_two_replicas_update_the_weights_as_one_with_the_whole_batch():
    r = run_script([os.path.join(HERE, "replicas_check.py"), "0", "4"])
    assert r.returncode == 0, r.stderr[-3000:]
    result = json.loads(r.stdout.strip().splitlines()[-1])
    # Four iterations: every phase, G_ema and w_avg (Greg and Dreg every 2nd minibatch).
    assert max(result["diff"].values()) < 1e-5, result["diff"]
    for one, two in zip(*result["stats"]):
        assert one.keys() == two.keys()
        assert all(abs(one[k] - two[k]) < 1e-5 for k in one), (one, two)


def test_two_replicas_augment_and_adapt_p_as_one():
    """Each image's augmentation is keyed by its position and r_t sums the signs over replicas, so the
    augmented step and the adaptive p do not depend on the split either."""
    r = run_script([os.path.join(HERE, "replicas_check.py"), "0", "4", "bgcfnc"])
    assert r.returncode == 0, r.stderr[-3000:]
    result = json.loads(r.stdout.strip().splitlines()[-1])
    assert max(result["diff"].values()) < 1e-5, result["diff"]
    one, two = result["augment"]  # p, the interval's sign sum and count, the last r_t
    np.testing.assert_allclose(one, two, atol=1e-6)
    moved = abs(one[0] - 0.5)
    assert one[3] != 0 and min(moved, abs(moved - 0.2)) < 1e-5  # two adjustments by 0.1 (same or opposite)
    for a, b in zip(*result["stats"]):
        assert all(abs(a[k] - b[k]) < 1e-5 for k in a), (a, b)


def test_path_length_mean_is_the_replicas_average():
    """With the running mean moving (decay 0.01), each replica's penalty uses its own moved mean,
    as each GPU does in stylegan2-ada, so the weights agree only closely; the stored mean is the
    replicas' average, which equals the one-replica value."""
    r = run_script([os.path.join(HERE, "replicas_check.py"), "0.01", "4"])
    assert r.returncode == 0, r.stderr[-3000:]
    result = json.loads(r.stdout.strip().splitlines()[-1])
    one, two = result["pl_mean"]
    assert one > 0.005 and abs(one - two) < 1e-6
    assert max(result["diff"].values()) < 2e-3


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_multi_worker_run_keeps_workers_identical(tmp_path):
    cluster = {"worker": [f"127.0.0.1:{p}" for p in _free_ports(2)]}
    procs = []
    for i in range(2):
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2",
               "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})}
        script = [sys.executable, os.path.join(HERE, "multi_worker_check.py"), str(tmp_path), str(i)]
        procs.append(subprocess.Popen(script, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True))
    outputs = [p.communicate(timeout=600) for p in procs]
    for p, (out, err) in zip(procs, outputs):
        assert p.returncode == 0, err[-3000:]
    a, b = (np.load(tmp_path / f"worker{i}.npz") for i in range(2))
    assert int(a["replicas"]) == 2 and int(a["cur_nimg"]) == int(b["cur_nimg"]) == 32
    assert bool(a["chief"]) and not bool(b["chief"])
    keys = [k for k in a.files if "/" in k]
    assert len(keys) > 50
    for k in keys:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    # Only the chief wrote a run directory; it holds the last checkpoint and snapshot.
    runs = os.listdir(tmp_path / "runs")
    assert len(runs) == 1
    files = os.listdir(tmp_path / "runs" / runs[0])
    assert "network-snapshot-000000032.keras" in files and "checkpoints" in files
