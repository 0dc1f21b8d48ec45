"""Training curves: the Pillow charts, the held-out images and D's scores per checkpoint, what
runners/plot_training.py reads from run directories and prints."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tf_stylegan2 import checkpoint
from tf_stylegan2.charts import BLUE, RED, Panel, Series, chart, nice_ticks
from tf_stylegan2.data import DatasetInfo, ImageDataset, open_dataset
from tf_stylegan2.networks import Discriminator
from tf_stylegan2.train import curves, held_out
from tf_stylegan2.train.state import create_state
from train_helpers import tiny_config

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_nice_ticks():
    """Steps of 1, 2 or 5 times a power of ten, at most 5 ticks, covering the range."""
    assert nice_ticks(0, 1) == [0, 0.5, 1.0]
    assert nice_ticks(3, 47) == [0, 20, 40, 60]
    assert nice_ticks(-0.3, 0.9) == [-0.5, 0, 0.5, 1.0]
    assert nice_ticks(0, 40) == [0, 10, 20, 30, 40]
    assert nice_ticks(2, 2) == [2, 2.5, 3.0]  # a flat curve still gets an axis


def test_chart_draws_each_series_in_its_panel():
    rising = Series("a", [0, 1, 2, 3], [0, 1, 2, 3], RED)
    falling = Series("b", [0, 1, 2, 3], [3, 2, 1, 0], BLUE)
    img = chart([Panel("one", [rising], guides=[1.5]), Panel("two", [falling])], cols=2, size=(200, 150))
    assert img.shape == (150, 400, 3) and img.dtype == np.uint8
    left, right = img[:, :200], img[:, 200:]
    is_colour = lambda part, c: np.all(part == c, axis=-1)  # noqa: E731
    assert is_colour(left, RED).sum() > 100 and is_colour(left, BLUE).sum() == 0
    assert is_colour(right, BLUE).sum() > 100 and is_colour(right, RED).sum() == 0
    # The rising line's pixels climb to the right (image rows grow downwards).
    ys, xs = np.nonzero(is_colour(left[:, :150], RED))
    assert np.corrcoef(xs, ys)[0, 1] < -0.9


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


def test_log_axis():
    from tf_stylegan2.charts import log_ticks

    assert log_ticks(7, 333) == [5, 10, 20, 50, 100, 200, 500]
    assert log_ticks(0.02, 3000) == [0.01, 0.1, 1, 10, 100, 1000, 10000]  # many decades: powers of ten only
    img = chart([Panel("fd", [Series("a", [0, 1, 2], [300, 30, 3], RED)], log_y=True)], cols=1, size=(200, 150))
    ys, xs = np.nonzero(np.all(img[36:] == RED, axis=-1))  # below the legend
    # Equal ratios are equal steps: the line from 300 to 3 is straight (one slope on a log axis).
    assert len(xs) > 50 and np.corrcoef(xs, ys)[0, 1] > 0.99
