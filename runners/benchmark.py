"""Benchmarks, printed as a markdown table for docs/PERFORMANCE.md.

  python -m runners.benchmark --what=generator --resolutions=64,256 --batch=8
"""

from __future__ import annotations

import platform

from absl import flags

from runners import cli

flags.DEFINE_list("what", ["generator"], "Benchmarks to run: generator.")
flags.DEFINE_list("resolutions", ["64"], "Image resolutions.")
flags.DEFINE_integer("batch", 8, "Batch size.")
flags.DEFINE_list("policies", ["float32", "mixed_bfloat16"], "Keras dtype policies to compare.")
flags.DEFINE_integer("iters", 5, "Timed iterations per case (median reported).")
FLAGS = flags.FLAGS


def main() -> None:
    import tensorflow as tf

    from tf_stylegan2.benchmark import generator_cases, generator_images_per_second

    unknown = set(FLAGS.what) - {"generator"}
    if unknown:
        raise ValueError(f"unknown benchmark(s) {sorted(unknown)}; expected: generator")
    print(f"TensorFlow {tf.__version__}, {platform.processor() or platform.machine()}, "
          f"{len(tf.config.list_physical_devices('GPU'))} GPU(s)")
    print("| resolution | batch | policy | fused_modconv | XLA | G forward img/s |")
    print("|---|---|---|---|---|---|")
    for case in generator_cases([int(r) for r in FLAGS.resolutions], FLAGS.batch, FLAGS.policies):
        ips = generator_images_per_second(case, FLAGS.iters)
        print(f"| {case.resolution} | {case.batch} | {case.policy} | {case.fused_modconv} | {case.jit} | {ips:.1f} |",
              flush=True)


if __name__ == "__main__":
    cli.run(main)
