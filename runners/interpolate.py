"""Interpolation video: walk between the images of seeds, linearly in W or spherically in Z.

  python -m runners.interpolate --network=run/ --seeds=1,2,3 --frames=30 --space=w --loop --outdir=out/
  python -m runners.interpolate --network=cond.keras --seeds=1,2,3 --class=0,4,7 --space=z --outdir=out/

Writes interpolation.mp4 (imageio-ffmpeg installed) or interpolation.gif and, with --grid,
frames.png (one row per transition).
"""

from __future__ import annotations

import os

from absl import flags

from runners import cli

flags.DEFINE_string("network", None, "Generator: a .keras file, a training run directory or a checkpoint.",
                    required=True)
flags.DEFINE_string("seeds", None, "Seeds to walk through, in order, e.g. '1,2,3' or '0-5'.", required=True)
flags.DEFINE_integer("frames", 30, "Frames per transition from one seed to the next.")
flags.DEFINE_enum("space", "w", ["w", "z"], "Interpolate mapped ws linearly (w) or latents spherically (z).")
flags.DEFINE_boolean("loop", False, "Return to the first seed at the end (a seamless loop).")
flags.DEFINE_float("trunc", 1.0, "Truncation psi (1 = none).")
flags.DEFINE_enum("noise_mode", "const", ["const", "random", "none"], "Noise inputs of the synthesis layers.")
flags.DEFINE_string("class_idx", None, "Conditional generators: one class for all seeds, or one per seed "
                    "(e.g. '0,4,7': the walk crosses classes).")
flags.DEFINE_alias("class", "class_idx")
flags.DEFINE_float("fps", 30.0, "Frames per second of the video.")
flags.DEFINE_boolean("grid", False, "Also write frames.png, every frame in a grid (one row per transition).")
flags.DEFINE_string("outdir", None, "Directory for the video (and frames.png).", required=True)
FLAGS = flags.FLAGS


def main() -> None:
    from tf_stylegan2.checkpoint import load_generator
    from tf_stylegan2.images import animation_format, grid, save_animation, save_png
    from tf_stylegan2.pictures import interpolation
    from tf_stylegan2.sampling import parse_seeds

    seeds = parse_seeds(FLAGS.seeds)
    classes = None if FLAGS.class_idx is None else parse_seeds(FLAGS.class_idx, what="class")
    if FLAGS.fps <= 0:
        raise ValueError(f"--fps must be positive, got {FLAGS.fps}")
    G = load_generator(FLAGS.network)
    frames = interpolation(G, seeds, FLAGS.frames, FLAGS.space, FLAGS.loop, FLAGS.trunc, FLAGS.noise_mode, classes)
    path = os.path.join(FLAGS.outdir, f"interpolation.{animation_format()}")
    save_animation(path, frames, FLAGS.fps)
    if FLAGS.grid:
        save_png(os.path.join(FLAGS.outdir, "frames.png"), grid(frames, cols=FLAGS.frames))
    print(f"{len(frames)} frames through seeds {FLAGS.seeds} ({FLAGS.space}) -> {path}")


if __name__ == "__main__":
    cli.run(main)
