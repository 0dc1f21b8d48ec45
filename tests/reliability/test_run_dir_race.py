"""Run numbers are claimed atomically: two processes released together by a barrier, many times,
get distinct ids and no error (listing then creating gave the same id 10 times in 100)."""

import multiprocessing
import os
import re
import traceback

from tf_stylegan2.checkpoint import new_run_dir

ROUNDS = 100


def _worker(outdir, worker, barrier, results):
    for k in range(ROUNDS):
        barrier.wait()
        try:
            results.put((worker, k, os.path.basename(new_run_dir(outdir, f"w{worker}-r{k}"))))
        except BaseException:  # the test reports it
            results.put((worker, k, traceback.format_exc()))


def test_two_processes_released_together_get_distinct_ids(tmp_path):
    outdir = str(tmp_path / "runs")
    ctx = multiprocessing.get_context("fork")  # new_run_dir needs no TensorFlow: forking is safe
    barrier, results = ctx.Barrier(2), ctx.Queue()
    workers = [ctx.Process(target=_worker, args=(outdir, w, barrier, results)) for w in range(2)]
    for p in workers:
        p.start()
    names = [results.get(timeout=120)[2] for _ in range(2 * ROUNDS)]
    for p in workers:
        p.join(timeout=60)
    errors = [n for n in names if not re.fullmatch(r"\d{5}-w\d-r\d+", n)]
    assert not errors, errors[0]
    ids = sorted(int(n.split("-")[0]) for n in names)
    assert ids == list(range(2 * ROUNDS))  # distinct, and no number skipped
    assert sorted(os.listdir(outdir)) == sorted(names)  # no claim left behind


def test_ids_count_past_every_numbered_entry(tmp_path):
    outdir = tmp_path / "runs"
    for name in ("00003", "00001-old", "notes.txt", "7-x"):  # a claim left by a killed process counts too
        os.makedirs(outdir / name)
    assert os.path.basename(new_run_dir(str(outdir), "new")) == "00008-new"
