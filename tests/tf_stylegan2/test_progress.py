"""The progress reporter: counts, rate, ETA, at most one line per interval, always the last one."""

from tf_stylegan2.progress import Progress, format_duration


def test_lines_show_count_rate_and_eta_at_intervals():
    now = [100.0]
    lines = []
    p = Progress("features", total=1000, interval=10, log=lines.append, clock=lambda: now[0])
    p.update(100)  # the first batch starts the clock: nothing printed yet
    for t, done in [(105, 200), (112, 300), (115, 400), (130, 1000)]:
        now[0] = t
        p.update(done)
    assert lines == [
        "features: 300/1000 img (30%)  16.7 img/s  ETA 42s",  # 200 images in 12 s
        "features: 1000/1000 img (100%)  30.0 img/s  done in 30s",
    ]


def test_format_duration():
    assert [format_duration(s) for s in (0, 59.4, 61, 3599, 3600 * 5 + 120, 86400 * 2 + 3600 * 4)] == [
        "0s", "59s", "1m 01s", "59m 59s", "5h 02m", "2d 04h"]
