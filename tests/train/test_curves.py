"""Training curves: the held-out images and D's scores per checkpoint, what runners/plot_training.py
and runners/plot_metrics.py read from run directories, draw and print."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tf_stylegan2 import checkpoint
from tf_stylegan2.data import DatasetInfo, ImageDataset, open_dataset
from tf_stylegan2.networks import Discriminator
from tf_stylegan2.train import curves, held_out
from tf_stylegan2.train.state import create_state
from train_helpers import tiny_config

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def small_dataset(n):
    full = open_dataset("builtin:shapes16")
    info = DatasetInfo("part", "part", n, 16, 3, full.info.c_dim)
    return ImageDataset(info, full.labels[:n], cache=full.images(np.arange(n))), full


def test_held_out_images_are_not_training_images():
    train, full = small_dataset(50)
    pixels, labels = held_out.held_out_images(train, full, 30)
    seen = {img.tobytes() for img in train.images(np.arange(50))}
    assert pixels.shape == (30, 16, 16, 3) and not any(img.tobytes() in seen for img in pixels)
    np.testing.assert_array_equal(pixels, full.images(np.arange(50, 80)))  # the builtin images are distinct
    np.testing.assert_array_equal(labels, full.labels[50:80])
    with pytest.raises(Exception, match="holds only 0 images that are not in"):
        held_out.held_out_images(train, train, 1)


def write_run(run_dir, stats, metric=None, cfg=None):
    os.makedirs(run_dir)
    options = {"options": {"data": "builtin:shapes16"}, "config": (cfg.to_dict() if cfg else {"train": {}})}
    checkpoint.write_run_options(run_dir, options)
    with open(os.path.join(run_dir, "stats.jsonl"), "w") as f:
        f.writelines(json.dumps(s) + "\n" for s in stats)
    if metric:
        with open(os.path.join(run_dir, "metric-fd2k_clf.jsonl"), "w") as f:
            f.writelines(json.dumps({"cur_nimg": n, "metric": "fd2k_clf", "value": v}) + "\n" for n, v in metric)


def test_scores_per_checkpoint_are_d_on_training_minus_held_out_images(tmp_path):
    cfg = tiny_config(16)
    run_dir = str(tmp_path / "run")
    write_run(run_dir, [{"cur_nimg": 8}], cfg=cfg)
    state = create_state(cfg, "float32", 0, False)
    for nimg in (8, 16):
        checkpoint.save(state.variables(), run_dir, f"ckpt-{nimg:09d}", keep=10)
        state.D.blocks[0].conv0.weight.assign(state.D.blocks[0].conv0.weight * 1.5)  # another D for the next one
    train, full = small_dataset(40)
    images = held_out.training_images(train), held_out.held_out_images(train, full, 40)
    scores = held_out.checkpoint_scores(run_dir, *images)
    assert [s["cur_nimg"] for s in scores] == [8, 16]
    D = Discriminator(cfg.D)
    checkpoint.restore({"D": D.weights}, os.path.join(run_dir, "checkpoints", "ckpt-000000016"))
    expected = [float(np.mean(D(x.astype(np.float32) / 127.5 - 1).numpy())) for x, _ in images]
    assert scores[1]["D/train"] == pytest.approx(expected[0], rel=1e-5)
    assert scores[1]["D/held_out"] == pytest.approx(expected[1], rel=1e-5)
    assert scores[1]["D/gap"] == pytest.approx(expected[0] - expected[1], rel=1e-4, abs=1e-6)
    assert scores[0]["D/train"] != pytest.approx(scores[1]["D/train"])


def test_plot_training_reads_stats_and_metrics(tmp_path):
    a, b = str(tmp_path / "noaug"), str(tmp_path / "ada")
    write_run(a, [{"cur_nimg": 1000 * k, "Loss/signs/real": 0.2 * k} for k in range(1, 5)],
              metric=[(1000, 50.0), (4000, 80.0)])
    write_run(b, [{"cur_nimg": 1000 * k, "Loss/signs/real": 0.5, "Progress/augment": 0.1 * k} for k in range(1, 5)],
              metric=[(1000, 50.0), (4000, 30.0)])
    runs = {"noaug": curves.run_curves(a), "ada": curves.run_curves(b)}
    assert runs["noaug"][curves.P] == ([1.0, 2.0, 3.0, 4.0], [0.0] * 4)  # no augmentation: p = 0
    assert runs["ada"]["fd2k_clf"] == ([1.0, 4.0], [50.0, 30.0])
    assert [p.title for p in curves.panels(runs)] == [curves.RT, curves.P, "fd2k_clf"]
    out = str(tmp_path / "plot.png")
    r = subprocess.run([sys.executable, "-m", "runners.plot_training", f"--runs={a},{b}", "--names=noaug,ada",
                        f"--out={out}", "--at=1,4"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "| noaug | fd2k_clf | 50.000 | 80.000 |" in r.stdout and "| ada | fd2k_clf | 50.000 | 30.000 |" in r.stdout
    assert np.asarray(Image.open(out)).shape == (480, 720, 3)  # 3 panels, 2 per row
    r = subprocess.run([sys.executable, "-m", "runners.plot_training", f"--runs={a}", "--names=x,y", f"--out={out}"],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "--names has 2 entries for 1 runs" in r.stderr


def _write(path, records):
    with open(path, "w") as f:
        f.write("".join(json.dumps(r) + "\n" for r in records))


def test_metric_curves_read_every_record_form_and_keep_the_last_evaluation(tmp_path):
    _write(tmp_path / "metric-fd2k_clf.jsonl", [
        {"results": {"fd2k_clf": 30.0}, "metric": "fd2k_clf", "cur_nimg": 4000},
        {"value": 100.0, "metric": "fd2k_clf", "cur_nimg": 32},  # the trainer's earlier form
        {"results": {"fd2k_clf": 25.0}, "metric": "fd2k_clf", "snapshot_pkl": "network-snapshot-000004000.keras"},
    ])
    _write(tmp_path / "metric-pr2k3.jsonl", [
        {"results": {"pr2k3_precision": 0.5, "pr2k3_recall": 0.25}, "metric": "pr2k3",
         "snapshot_pkl": "network-snapshot-000000032.keras"}])
    got = curves.metric_curves(str(tmp_path))
    assert got == {"fd2k_clf": ([0.032, 4.0], [100.0, 25.0]), "pr2k3_precision": ([0.032], [0.5]),
                   "pr2k3_recall": ([0.032], [0.25])}
    assert curves.metric_table(got).splitlines() == [
        "| kimg | 0.0 | 4.0 |", "|---|---|---|", "| fd2k_clf | 100 | 25 |", "| pr2k3_precision | 0.5 |  |",
        "| pr2k3_recall | 0.25 |  |"]
    fd, precision, _ = curves.metric_panels(got, {"fd2k_clf": [(15.2, "blurred reals")]})
    assert (fd.log_y, fd.y_range, fd.guides) == (True, None, ((15.2, "blurred reals"),))
    assert (precision.log_y, precision.y_range) == (False, (0.0, 1.0))


def _plot(*args):
    return subprocess.run([sys.executable, "-m", "runners.plot_metrics", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


def test_plot_metrics_writes_the_chart_and_refuses_bad_input(tmp_path):
    _write(tmp_path / "metric-fd2k_clf.jsonl", [
        {"results": {"fd2k_clf": v}, "metric": "fd2k_clf", "cur_nimg": n} for n, v in [(32, 100.0), (2000, 40.0)]])
    r = _plot(f"--run={tmp_path}", "--reference=fd2k_clf=15.2:blurred reals")
    assert r.returncode == 0, r.stderr
    assert "| fd2k_clf | 100 | 40 |" in r.stdout
    assert Image.open(tmp_path / "metrics.png").size == (640, 220)  # one panel
    for args, message in [(["--reference=fd2k_clf:15"], "expected 'metric=value:label'"),
                          (["--reference=kid2k_clf=1:x"], "'kid2k_clf', which the run does not have"),
                          ([], None)]:
        run_dir = tmp_path if message else tmp_path / "empty"
        os.makedirs(run_dir, exist_ok=True)
        r = _plot(f"--run={run_dir}", f"--out={tmp_path / 'other.png'}", *args)
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 2 and len(lines) == 1, r.stderr
        assert (message or "has no metric-*.jsonl records") in lines[0]
    assert not os.path.exists(tmp_path / "other.png")
