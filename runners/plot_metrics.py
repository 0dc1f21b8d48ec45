"""Plot a training run's metrics over kimg (a PNG) and print them as a markdown table.

  python -m runners.plot_metrics --run=out/demo/00000-shapes32-cond-mirror-demo-b8-noaug
  python -m runners.plot_metrics --run=runs/00003-... --out=curves.png \\
      --reference="fd2k_clf=15.2:blurred reals" --reference="acc2k_clf=0.25:chance"

Reads the run's metric-<name>.jsonl files (written at every snapshot, or by runners.calc_metrics):
one panel per result, distances on a log axis, accuracies on 0..1.
"""

from __future__ import annotations

import os
import re

from absl import flags

from runners import cli

flags.DEFINE_string("run", None, "Training run directory.", required=True)
flags.DEFINE_string("out", None, "PNG to write (default: <run>/metrics.png).")
flags.DEFINE_multi_string("reference", [], "A dashed line 'metric=value:label', e.g. 'fd2k_clf=15.2:blurred reals'.")
FLAGS = flags.FLAGS


def _references(texts):
    out = {}
    for text in texts:
        m = re.fullmatch(r"\s*([\w.]+)\s*=\s*([-+0-9.eE]+)\s*:(.*)", text)
        if not m:
            raise ValueError(f"bad --reference {text!r}: expected 'metric=value:label', e.g. 'fd2k_clf=15.2:blurred reals'")
        out.setdefault(m.group(1), []).append((float(m.group(2)), m.group(3).strip()))
    return out


def main() -> None:
    from tf_stylegan2.fileio import UserError
    from tf_stylegan2.images import save_png
    from tf_stylegan2.charts import chart
    from tf_stylegan2.train.curves import metric_curves, metric_panels, metric_table

    references = _references(FLAGS.reference)
    if not os.path.isdir(FLAGS.run):
        raise UserError(f"no such run directory: {FLAGS.run}")
    curves = metric_curves(FLAGS.run)
    if not curves:
        raise UserError(f"{FLAGS.run} has no metric-*.jsonl records (train with --metrics=...)")
    unknown = sorted(set(references) - set(curves))
    if unknown:
        raise UserError(f"--reference names {unknown[0]!r}, which the run does not have (it has {', '.join(curves)})")
    out = FLAGS.out or os.path.join(FLAGS.run, "metrics.png")
    save_png(out, chart(metric_panels(curves, references), cols=1, size=(640, 220)))
    print(metric_table(curves))
    last = ", ".join(f"{name} {values[-1]:.4g} at {kimg[-1]:g} kimg" for name, (kimg, values) in curves.items())
    print(f"{last} -> {out}")


if __name__ == "__main__":
    cli.run(main)
