"""Plot training runs side by side: r_t (D's mean sign on real images), the augmentation
probability p and every metric over kimg, and with --held_out D's mean logit on its training images
minus held-out ones per checkpoint (the overfitting of Karras et al. 2020, Figure 1).

  python -m runners.plot_training --runs=runs/00000-shapes16-200-small-b32-noaug,runs/00001-shapes16-200-small-b32 \\
      --names=noaug,ada --held_out=builtin:shapes16 --out=docs/images/ada_vs_noaug.png

Prints a markdown table of the curves at --at kimg.
"""

from __future__ import annotations

from absl import flags

from runners import cli

flags.DEFINE_list("runs", None, "Training run directories.", required=True)
flags.DEFINE_list("names", None, "A legend name per run (default: the directory names).")
flags.DEFINE_string("out", None, "The PNG to write.", required=True)
flags.DEFINE_string("held_out", None, "A dataset whose images that are not in a run's training set serve as "
                    "held-out reals (D is evaluated at every checkpoint of each run).")
flags.DEFINE_integer("count", 200, "Training and held-out images D is evaluated on.")
flags.DEFINE_list("at", [], "kimg values for the printed table (default: the last tick).")
FLAGS = flags.FLAGS


def main() -> None:
    import os

    from tf_stylegan2.charts import chart
    from tf_stylegan2.data import open_dataset
    from tf_stylegan2.fileio import UserError
    from tf_stylegan2.images import save_png
    from tf_stylegan2.train import curves

    names = FLAGS.names or [os.path.basename(os.path.normpath(r)) for r in FLAGS.runs]
    if len(names) != len(FLAGS.runs):
        raise UserError(f"--names has {len(names)} entries for {len(FLAGS.runs)} runs")
    held_out = open_dataset(FLAGS.held_out) if FLAGS.held_out else None
    runs = {name: curves.run_curves(run, held_out, FLAGS.count) for name, run in zip(names, FLAGS.runs)}
    save_png(FLAGS.out, chart(curves.panels(runs, target=curves.ada_target(FLAGS.runs))))
    at = [float(k) for k in FLAGS.at] or [max(c[curves.RT][0][-1] for c in runs.values())]
    print("| run | curve | " + " | ".join(f"{k:g} kimg" for k in at) + " |")
    print("|---|---|" + "---|" * len(at))
    print("\n".join(curves.summary(runs, at)))
    print(f"Wrote {FLAGS.out}")


if __name__ == "__main__":
    cli.run(main)
