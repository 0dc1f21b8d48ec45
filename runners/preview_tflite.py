"""Edge preview: run a .tflite generator with the LiteRT interpreter, write a PNG grid for some
seeds, print the latency per image and the model size, and (with --network) the parity against
the Keras generator.

  python -m runners.preview_tflite --model=tflite/generator_fp16.tflite --seeds=0-7 --out=preview.png
  python -m runners.preview_tflite --model=tflite/generator_int8.tflite --network=G.keras --seeds=0-7 --out=p.png

A synthesis model (ws -> image) needs --network for the mapping.
"""

from __future__ import annotations

from absl import flags

from runners import cli

flags.DEFINE_string("model", None, "The .tflite file (from runners.export_tflite).", required=True)
flags.DEFINE_string("network", None, "The Keras generator it came from: parity figures, and the mapping for synthesis.")
flags.DEFINE_string("seeds", "0-7", "Latent seeds, e.g. '0-7' or '1,5,9'.")
flags.DEFINE_float("trunc", 1.0, "Truncation psi (1 = none).")
flags.DEFINE_integer("class_idx", None, "Class label for a conditional generator.")
flags.DEFINE_integer("threads", 1, "Interpreter threads.")
flags.DEFINE_string("out", None, "PNG file for the grid of images.", required=True)
FLAGS = flags.FLAGS


def main() -> None:
    import numpy as np

    from tf_stylegan2.checkpoint import load_generator
    from tf_stylegan2.export.tflite import TFLiteModel, preview
    from tf_stylegan2.images import grid, save_png
    from tf_stylegan2.sampling import parse_seeds

    seeds = parse_seeds(FLAGS.seeds)
    model = TFLiteModel(FLAGS.model, num_threads=FLAGS.threads)
    G = load_generator(FLAGS.network) if FLAGS.network else None
    result = preview(model, seeds, FLAGS.trunc, FLAGS.class_idx, G)
    save_png(FLAGS.out, grid(result.images))
    ms = 1000 * np.asarray(result.latencies)
    print(f"{FLAGS.model}: {model.kind} {model.resolution}x{model.resolution}, {result.size_bytes / 2**20:.2f} MiB")
    print(f"latency per image: mean {ms.mean():.2f} ms, median {np.median(ms):.2f} ms, min {ms.min():.2f} ms "
          f"({len(seeds)} images, {FLAGS.threads} thread(s))")
    if result.psnr is not None:
        print(f"parity with {FLAGS.network}: max abs diff {result.max_abs_diff:.3g}, PSNR {result.psnr:.1f} dB "
              "(images clipped to [-1, 1])")
    print(f"grid -> {FLAGS.out}")


if __name__ == "__main__":
    cli.run(main)
