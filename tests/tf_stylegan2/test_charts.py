"""The Pillow line charts: ticks, where points and guides land, panels side by side, log axes."""

import numpy as np

from tf_stylegan2.charts import BLUE, GREY, RED, Panel, Series, chart, log_ticks, nice_ticks


def test_nice_ticks():
    """Steps of 1, 2 or 5 times a power of ten, at most 5 ticks, covering the range."""
    assert nice_ticks(0, 1) == [0, 0.5, 1.0]
    assert nice_ticks(3, 47) == [0, 20, 40, 60]
    assert nice_ticks(-0.3, 0.9) == [-0.5, 0, 0.5, 1.0]
    assert nice_ticks(0, 40) == [0, 10, 20, 30, 40]
    assert nice_ticks(2, 2) == [2, 2.5, 3.0]  # a flat curve still gets an axis


def test_points_and_guides_land_where_the_axes_say():
    """From (0, 0) to (10, 1) on a fixed 0..1 axis: the end dots sit at the plot box's corners, the
    middle of the line at its centre, a guide at 0.25 a quarter of the way up."""
    img = chart([Panel("p", [Series("s", [0.0, 10.0], [0.0, 1.0], RED)], guides=[(0.25, "chance")],
                       y_range=(0.0, 1.0))], cols=1, size=(200, 150))
    # The box spans x 44..190 (margins 44 and 10) and y 22..120 (margins 22 and 30).
    for y, x in [(120, 44), (22, 190), (71, 117)]:
        np.testing.assert_array_equal(img[y, x], RED)
    assert tuple(img[100, 170]) != RED  # off the line
    guide_row = 120 - 0.25 * 98
    dashes = np.all(img[int(guide_row) - 1:int(guide_row) + 2, 60:100] == GREY, axis=-1).any(axis=0)
    assert 0.3 < dashes.mean() < 0.8  # dashed: 4 of every 8 pixels


def test_chart_draws_each_series_in_its_panel():
    rising = Series("a", [0, 1, 2, 3], [0, 1, 2, 3], RED)
    falling = Series("b", [0, 1, 2, 3], [3, 2, 1, 0], BLUE)
    img = chart([Panel("one", [rising], guides=[(1.5, "g")]), Panel("two", [falling])], cols=2, size=(200, 150))
    assert img.shape == (150, 400, 3) and img.dtype == np.uint8
    left, right = img[:, :200], img[:, 200:]
    is_colour = lambda part, c: np.all(part == c, axis=-1)  # noqa: E731
    assert is_colour(left, RED).sum() > 100 and is_colour(left, BLUE).sum() == 0
    assert is_colour(right, BLUE).sum() > 100 and is_colour(right, RED).sum() == 0
    # The rising line's pixels climb to the right (image rows grow downwards).
    ys, xs = np.nonzero(is_colour(left[:, :150], RED))
    assert np.corrcoef(xs, ys)[0, 1] < -0.9


def test_log_axis():
    assert log_ticks(7, 333) == [5, 10, 20, 50, 100, 200, 500]
    assert log_ticks(0.02, 3000) == [0.01, 0.1, 1, 10, 100, 1000, 10000]  # many decades: powers of ten only
    img = chart([Panel("fd", [Series("a", [0, 1, 2], [300, 30, 3], RED)], log_y=True)], cols=1, size=(200, 150))
    ys, xs = np.nonzero(np.all(img[36:] == RED, axis=-1))  # below the legend
    # Equal ratios are equal steps: the line from 300 to 3 is straight (one slope on a log axis).
    assert len(xs) > 50 and np.corrcoef(xs, ys)[0, 1] > 0.99
