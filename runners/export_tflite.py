"""Export a generator to TFLite for on-device preview: batch-1 generator (z -> image) and synthesis
(ws -> image) models in fp32, fp16 and int8 dynamic-range weights, builtin operators only.

  python -m runners.export_tflite --network=G.keras --outdir=tflite/
  python -m runners.export_tflite --network=G.keras --outdir=tflite/ --models=generator --quantize=fp16

Writes <outdir>/<model>_<quantization>.tflite. Noise is the generator's stored const noise.
Check a file with runners.preview_tflite; see docs/EXPORT.md.
"""

from __future__ import annotations

from absl import flags, logging

from runners import cli

flags.DEFINE_string("network", None, "Generator to export (anything checkpoint.load_generator reads).", required=True)
flags.DEFINE_string("outdir", None, "Directory for the .tflite files.", required=True)
flags.DEFINE_list("models", ["generator", "synthesis"],
                  "Which models: generator (z -> image), synthesis (ws -> image).")
flags.DEFINE_list("quantize", ["fp32", "fp16", "int8"], "Weight formats: fp32, fp16, int8 (dynamic range).")
flags.DEFINE_bool("overwrite", False, "Replace existing .tflite files (otherwise they are an error).")
FLAGS = flags.FLAGS


def main() -> None:
    logging.set_verbosity(logging.WARNING)  # SavedModel writing logs every step at INFO
    import os

    from tf_stylegan2.checkpoint import load_generator
    from tf_stylegan2.export.tflite import export_tflite

    G = load_generator(FLAGS.network)
    paths = export_tflite(G, FLAGS.outdir, FLAGS.models, FLAGS.quantize, overwrite=FLAGS.overwrite)
    for path in paths.values():
        print(f"{path}: {os.path.getsize(path) / 2**20:.2f} MiB")


if __name__ == "__main__":
    cli.run(main)
