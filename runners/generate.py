"""Generate images for a list of seeds: one PNG per seed plus a grid.

  python -m runners.generate --network=G.keras --seeds=0-15 --trunc=0.7 --outdir=out/
  python -m runners.generate --cfg=paper256 --resolution=256 --seeds=0-3 --outdir=out/  # random init
"""

from __future__ import annotations

import os

from absl import flags

from runners import cli

flags.DEFINE_string("network", None, "Generator to load: a .keras file, a training run directory (its newest "
                    "snapshot) or one of its checkpoints (default: a randomly initialised one).")
flags.DEFINE_string("cfg", "auto", "Preset for a randomly initialised generator (without --network).")
flags.DEFINE_integer("resolution", 32, "Resolution of a randomly initialised generator (without --network).")
flags.DEFINE_integer("init_seed", 0, "Weight initialisation seed of a randomly initialised generator.")
flags.DEFINE_string("seeds", "0-15", "Latent seeds, e.g. '0-7' or '1,5,9'.")
flags.DEFINE_float("trunc", 1.0, "Truncation psi (1 = none).")
flags.DEFINE_integer("class_idx", None, "Class label for a conditional generator.")
flags.DEFINE_enum("noise_mode", "const", ["const", "random", "none"], "Noise inputs of the synthesis layers.")
flags.DEFINE_string("outdir", None, "Directory for seedNNNN.png and grid.png.", required=True)
FLAGS = flags.FLAGS


def main() -> None:
    import keras

    from tf_stylegan2 import Generator, resolve
    from tf_stylegan2.checkpoint import load_generator
    from tf_stylegan2.images import grid, save_png
    from tf_stylegan2.sampling import generate_images, parse_seeds

    seeds = parse_seeds(FLAGS.seeds)
    if FLAGS.network:
        G = load_generator(FLAGS.network)
        source = FLAGS.network
    else:
        keras.utils.set_random_seed(FLAGS.init_seed)
        G = Generator(resolve(FLAGS.cfg, FLAGS.resolution).G)
        source = f"random init ({FLAGS.cfg}, {FLAGS.resolution}px, seed {FLAGS.init_seed})"
    images = generate_images(G, seeds, FLAGS.trunc, FLAGS.noise_mode, FLAGS.class_idx)
    for seed, img in zip(seeds, images):
        save_png(os.path.join(FLAGS.outdir, f"seed{seed:04d}.png"), img)
    save_png(os.path.join(FLAGS.outdir, "grid.png"), grid(images))
    print(f"{len(seeds)} images from {source} -> {os.path.join(FLAGS.outdir, 'grid.png')}")


if __name__ == "__main__":
    cli.run(main)
