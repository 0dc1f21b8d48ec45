"""Export a generator as a SavedModel for TF Serving: <model_base>/<version>/ with the signatures
generate (z -> uint8 images), mapping (z -> ws) and synthesis (ws -> uint8 images), dynamic batch.

  python -m runners.export_savedmodel --network=G.keras --model_base=serving/stylegan2
  python -m runners.export_savedmodel --network=G.keras --model_base=serving/stylegan2 --version=3 --overwrite

See docs/EXPORT.md for the signatures and how to serve the result.
"""

from __future__ import annotations

from absl import flags, logging

from runners import cli

flags.DEFINE_string("network", None, "Generator to export (anything checkpoint.load_generator reads).", required=True)
flags.DEFINE_string("model_base", None, "TF Serving model base directory; the export goes to <model_base>/<version>/.",
                    required=True)
flags.DEFINE_integer("version", None, "Version number (default: one past the highest present, 1 for a new base).")
flags.DEFINE_bool("overwrite", False, "Replace the version if it exists (otherwise an existing version is an error).")
FLAGS = flags.FLAGS


def main() -> None:
    logging.set_verbosity(logging.WARNING)  # SavedModel writing logs every step at INFO
    from tf_stylegan2.checkpoint import load_generator
    from tf_stylegan2.export.savedmodel import SIGNATURES, export_savedmodel

    G = load_generator(FLAGS.network)
    path = export_savedmodel(G, FLAGS.model_base, version=FLAGS.version, overwrite=FLAGS.overwrite)
    kind = f"conditional (c_dim={G.c_dim})" if G.c_dim else "unconditional"
    print(
        f"{path}: SavedModel of a {G.img_resolution}x{G.img_resolution} {kind} generator (z_dim={G.z_dim}), "
        f"signatures {', '.join(SIGNATURES)} (serving_default = generate)"
    )


if __name__ == "__main__":
    cli.run(main)
