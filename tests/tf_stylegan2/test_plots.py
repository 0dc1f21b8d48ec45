"""The metric charts: ticks, where points land, reading a run's metric records, the runner."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tf_stylegan2.plots import COLORS, Panel, Series, chart, curves_table, log_ticks, metric_curves, nice_ticks

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.parametrize("lo, hi, expected", [
    (0, 10, [0, 2, 4, 6, 8, 10]), (0, 1, [0, 0.2, 0.4, 0.6, 0.8, 1.0]), (3.2, 97, [0, 20, 40, 60, 80, 100]),
    (0.0, 0.4, [0, 0.1, 0.2, 0.3, 0.4]),
])
def test_nice_ticks_are_round_and_cover_the_range(lo, hi, expected):
    ticks = nice_ticks(lo, hi)
    np.testing.assert_allclose(ticks, expected, atol=1e-12)
    assert ticks[0] <= lo and ticks[-1] >= hi


def test_log_ticks_cover_the_range_with_1_2_5_decades():
    assert log_ticks(12.0, 105.0) == [10.0, 20.0, 50.0, 100.0, 200.0]
    assert log_ticks(0.09, 0.5) == [0.05, 0.1, 0.2, 0.5]


def test_points_land_where_the_axes_say():
    """A series from (0, 0) to (10, 1) on a 0..1 axis: its end dots sit at the plot box's corners."""
    image = chart([Panel("p", [Series("s", [0.0, 10.0], [0.0, 1.0])], y_range=(0.0, 1.0))], "x", width=400,
                  panel_height=100)
    # The box spans x 64..250 (left margin 64, right 150) and y 24..124 (top margin 24).
    np.testing.assert_array_equal(image[124, 64], COLORS[0])
    np.testing.assert_array_equal(image[24, 250], COLORS[0])
    np.testing.assert_array_equal(image[74, 157], COLORS[0])  # the middle of the line
    assert tuple(image[100, 100]) != COLORS[0]  # off the line


def _write(path, records):
    with open(path, "w") as f:
        f.write("".join(json.dumps(r) + "\n" for r in records))


def test_metric_curves_read_both_record_forms_and_keep_the_last_evaluation(tmp_path):
    _write(tmp_path / "metric-fd2k_clf.jsonl", [
        {"results": {"fd2k_clf": 30.0}, "metric": "fd2k_clf", "cur_nimg": 4000},
        {"results": {"fd2k_clf": 100.0}, "metric": "fd2k_clf", "cur_nimg": 32},
        {"results": {"fd2k_clf": 25.0}, "metric": "fd2k_clf", "snapshot_pkl": "network-snapshot-000004000.keras"},
    ])
    _write(tmp_path / "metric-pr2k3.jsonl", [
        {"results": {"pr2k3_precision": 0.5, "pr2k3_recall": 0.25}, "metric": "pr2k3",
         "snapshot_pkl": "network-snapshot-000000032.keras"}])
    curves = metric_curves(str(tmp_path))
    assert curves == {"fd2k_clf": [(0.032, 100.0), (4.0, 25.0)], "pr2k3_precision": [(0.032, 0.5)],
                      "pr2k3_recall": [(0.032, 0.25)]}
    assert curves_table(curves).splitlines() == [
        "| kimg | 0.0 | 4.0 |", "|---|---|---|", "| fd2k_clf | 100 | 25 |", "| pr2k3_precision | 0.5 |  |",
        "| pr2k3_recall | 0.25 |  |"]


def _plot(*args):
    return subprocess.run([sys.executable, "-m", "runners.plot_metrics", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


def test_runner_writes_the_chart_and_refuses_bad_input(tmp_path):
    _write(tmp_path / "metric-fd2k_clf.jsonl", [
        {"results": {"fd2k_clf": v}, "metric": "fd2k_clf", "cur_nimg": n} for n, v in [(32, 100.0), (2000, 40.0)]])
    r = _plot(f"--run={tmp_path}", "--reference=fd2k_clf=15.2:blurred reals")
    assert r.returncode == 0, r.stderr
    assert "| fd2k_clf | 100 | 40 |" in r.stdout
    assert Image.open(tmp_path / "metrics.png").size == (640, 264)
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
