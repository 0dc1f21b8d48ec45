"""Style mixing matrix (stylegan2-ada-pytorch's style_mixing.py): row seeds x column seeds, each
cell the row's ws with the column's at --styles.

  python -m runners.style_mixing --network=run/ --rows=85,100,75,458,1500 --cols=55,821,1789,293 \
      --styles=0-6 --trunc=1 --outdir=out/

Writes grid.png (sources along the top and the left) and <row>-<col>.png for every cell and
<seed>-<seed>.png for every source, as NVIDIA's script.
"""

from __future__ import annotations

import os

from absl import flags

from runners import cli

flags.DEFINE_string("network", None, "Generator: a .keras file, a training run directory or a checkpoint.",
                    required=True)
flags.DEFINE_string("rows", None, "Seeds of the rows (the coarse-to-fine base), e.g. '85,100,75' or '0-4'.",
                    required=True)
flags.DEFINE_string("cols", None, "Seeds of the columns (whose styles are copied in).", required=True)
flags.DEFINE_string("styles", "0-6", "Layers (indices into ws) that take the column's w.")
flags.DEFINE_float("trunc", 1.0, "Truncation psi (1 = none).")
flags.DEFINE_enum("noise_mode", "const", ["const", "random", "none"], "Noise inputs of the synthesis layers.")
flags.DEFINE_integer("class_idx", None, "Class label for a conditional generator.")
flags.DEFINE_alias("class", "class_idx")
flags.DEFINE_string("outdir", None, "Directory for grid.png and the cells.", required=True)
FLAGS = flags.FLAGS


def main() -> None:
    from tf_stylegan2.checkpoint import load_generator
    from tf_stylegan2.images import save_png
    from tf_stylegan2.pictures import parse_styles, style_mixing
    from tf_stylegan2.sampling import parse_seeds

    rows, cols = parse_seeds(FLAGS.rows), parse_seeds(FLAGS.cols)
    G = load_generator(FLAGS.network)
    styles = parse_styles(FLAGS.styles, G.num_ws)
    result = style_mixing(G, rows, cols, styles, FLAGS.trunc, FLAGS.noise_mode, FLAGS.class_idx)
    for (row, col), image in result.images.items():
        save_png(os.path.join(FLAGS.outdir, f"{row}-{col}.png"), image)
    save_png(os.path.join(FLAGS.outdir, "grid.png"), result.grid)
    print(f"{len(rows)}x{len(cols)} style mixing (styles {FLAGS.styles}) -> {os.path.join(FLAGS.outdir, 'grid.png')}")


if __name__ == "__main__":
    cli.run(main)
