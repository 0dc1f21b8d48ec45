"""Generate images for a list of seeds (one PNG per seed plus a grid), truncation sweeps, or
render projected ws.

  python -m runners.generate --network=G.keras --seeds=0-15 --trunc=0.7 --outdir=out/
  python -m runners.generate --network=run/ --seeds=0-7 --trunc=1.0,0.7,0.5 --outdir=out/  # one row per psi
  python -m runners.generate --network=cond_run/ --seeds=0-7 --outdir=out/  # conditional: one row per class
  python -m runners.generate --network=run/ --projected_w=proj/projected_w.npz --outdir=out/
  python -m runners.generate --cfg=paper256 --resolution=256 --seeds=0-3 --outdir=out/  # random init
"""

from __future__ import annotations

import os
import sys

from absl import flags

from runners import cli

flags.DEFINE_string("network", None, "Generator to load: a .keras file, a training run directory or a checkpoint "
                    "(default: a randomly initialised one).")
flags.DEFINE_string("cfg", "auto", "Preset for a randomly initialised generator (without --network).")
flags.DEFINE_integer("resolution", 32, "Resolution of a randomly initialised generator (without --network).")
flags.DEFINE_integer("init_seed", 0, "Weight initialisation seed of a randomly initialised generator.")
flags.DEFINE_string("seeds", "0-15", "Latent seeds, e.g. '0-7' or '1,5,9'.")
flags.DEFINE_string("trunc", "1", "Truncation psi (1 = none), or a sweep '1.0,0.7,0.5': one grid row per psi.")
flags.DEFINE_string("projected_w", None, "Render the ws of this .npz (key 'w', [N, num_ws, w_dim], as written by "
                    "runners.projector) instead of seeds.")
flags.DEFINE_integer("class_idx", None, "Class label for a conditional generator (default: a grid row per class).")
flags.DEFINE_alias("class", "class_idx")
flags.DEFINE_enum("noise_mode", "const", ["const", "random", "none"], "Noise inputs of the synthesis layers.")
flags.DEFINE_string("outdir", None, "Directory for seedNNNN.png and grid.png (projNN.png with --projected_w).",
                    required=True)
FLAGS = flags.FLAGS


def main() -> None:
    import keras
    import numpy as np

    from tf_stylegan2 import Generator, resolve
    from tf_stylegan2.checkpoint import load_generator
    from tf_stylegan2.images import grid, save_png
    from tf_stylegan2.sampling import generate_images, load_ws, parse_seeds, parse_truncation, synthesize

    seeds = parse_seeds(FLAGS.seeds)
    psis = parse_truncation(FLAGS.trunc)
    if FLAGS.network:
        G = load_generator(FLAGS.network)
        source = FLAGS.network
    else:
        keras.utils.set_random_seed(FLAGS.init_seed)
        G = Generator(resolve(FLAGS.cfg, FLAGS.resolution).G)
        source = f"random init ({FLAGS.cfg}, {FLAGS.resolution}px, seed {FLAGS.init_seed})"
    if FLAGS.projected_w:  # as NVIDIA's generate.py: the ws replace the seeds
        if FLAGS["seeds"].present or FLAGS["trunc"].present:
            print("note: --seeds and --trunc do not apply to --projected_w", file=sys.stderr)
        images = synthesize(G, load_ws(FLAGS.projected_w, G), FLAGS.noise_mode)
        for i, img in enumerate(images):
            save_png(os.path.join(FLAGS.outdir, f"proj{i:02d}.png"), img)
        print(f"{len(images)} images of {FLAGS.projected_w} from {source} -> {FLAGS.outdir}")
        return
    if G.c_dim and FLAGS.class_idx is None and len(psis) == 1:  # a conditional G: a row per class
        cases = [(psis[0], k, f"-class{k}") for k in range(G.c_dim)]
    else:
        cases = [(psi, FLAGS.class_idx, "" if len(psis) == 1 else f"-trunc{psi:g}") for psi in psis]
    rows = [generate_images(G, seeds, psi, FLAGS.noise_mode, class_idx) for psi, class_idx, _ in cases]
    for (_, _, suffix), images in zip(cases, rows):
        for seed, img in zip(seeds, images):
            save_png(os.path.join(FLAGS.outdir, f"seed{seed:04d}{suffix}.png"), img)
    save_png(os.path.join(FLAGS.outdir, "grid.png"),
             grid(rows[0]) if len(rows) == 1 else grid(np.concatenate(rows), cols=len(seeds)))
    print(f"{len(seeds) * len(rows)} images from {source} -> {os.path.join(FLAGS.outdir, 'grid.png')}")


if __name__ == "__main__":
    cli.run(main)
