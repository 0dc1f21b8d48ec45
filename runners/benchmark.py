"""Benchmarks, printed as markdown tables for docs/PERFORMANCE.md.

  python -m runners.benchmark --what=generator --resolutions=64,256 --batch=8
  python -m runners.benchmark --what=training --resolutions=32,64 --policies=fp32,mixed --jit=false,true \\
      --ops=ref,custom
  python -m runners.benchmark --what=generator,training --ops=ref,cuda     # GPU: the CUDA kernels

``--policies`` takes Keras dtype policies or the training precisions 'fp32' and 'mixed'
(float16 on a GPU, bfloat16 otherwise). Training runs ``--preset`` with the global ``--train_batch``
and reports the median of ``--iters`` lazy-regularization cycles (16 minibatches each) after one
cycle and a minibatch of warm-up; XLA with the compiled kernels (ops=custom) is skipped.
"""

from __future__ import annotations

import platform
from typing import List

from absl import flags

from custom_ops.loader import IMPLS
from runners import cli

WHAT = ("generator", "training")

flags.DEFINE_list("what", ["generator"], f"Benchmarks to run: {', '.join(WHAT)}.")
flags.DEFINE_list("resolutions", ["64"], "Image resolutions (training: 16, 32 or 64, the builtin shapes datasets).")
flags.DEFINE_integer("batch", 8, "Generator batch size.")
flags.DEFINE_list("policies", ["float32", "mixed_bfloat16"],
                  "Keras dtype policies to compare, or the precisions fp32 / mixed.")
flags.DEFINE_integer("iters", 5, "Timed units per case, median reported: generator calls, training cycles.")
flags.DEFINE_integer("train_batch", 32, "Training: global batch size.")
flags.DEFINE_string("preset", "small", "Training: configuration preset (tf_stylegan2.config.PRESETS).")
flags.DEFINE_list("jit", ["false", "true"], "Training: XLA settings to compare (booleans, as absl spells them).")
flags.DEFINE_list("ops", ["ref", "custom"],
                  f"Ops implementations to compare ({', '.join(IMPLS)}; cuda: the GPU kernels).")
FLAGS = flags.FLAGS


def _bools(values: List[str], flag: str) -> List[bool]:
    """Each entry of a list flag read as absl reads a boolean flag's value (true/false, t/f, 1/0)."""
    parser = flags.BooleanParser()
    out = []
    for value in values:
        try:
            out.append(parser.parse(value))
        except ValueError:
            raise ValueError(f"--{flag}: expected true or false, got {value!r}") from None
    return out


def main() -> None:
    unknown = [w for w in FLAGS.what if w not in WHAT]
    if unknown:
        raise ValueError(f"unknown benchmark(s) {unknown}; expected: {', '.join(WHAT)}")
    resolutions = [int(r) for r in FLAGS.resolutions]
    jits = _bools(FLAGS.jit, "jit")

    import tensorflow as tf

    from tf_stylegan2 import benchmark

    generator_cases = benchmark.generator_cases(resolutions, FLAGS.batch, FLAGS.policies, FLAGS.ops)
    training_cases = []
    if "training" in FLAGS.what:
        training_cases = benchmark.training_cases(resolutions, FLAGS.train_batch, FLAGS.policies, jits, FLAGS.ops,
                                                  FLAGS.preset)
    print(f"TensorFlow {tf.__version__}, {platform.processor() or platform.machine()}, "
          f"{len(tf.config.list_physical_devices('GPU'))} GPU(s)")
    if "generator" in FLAGS.what:
        print("| resolution | batch | policy | fused_modconv | XLA | ops | G forward img/s |")
        print("|---|---|---|---|---|---|---|")
        for case in generator_cases:
            ips = benchmark.generator_images_per_second(case, FLAGS.iters)
            print(f"| {case.resolution} | {case.batch} | {case.policy} | {case.fused_modconv} | {case.jit} | "
                  f"{case.ops} | {ips:.1f} |", flush=True)
    if "training" in FLAGS.what:
        if "generator" in FLAGS.what:
            print()
        print("| resolution | batch | preset | policy | XLA | ops | sec/kimg | img/s |")
        print("|---|---|---|---|---|---|---|---|")
        for case in training_cases:
            r = benchmark.training_speed(case, FLAGS.iters)
            print(f"| {case.resolution} | {case.batch} | {case.preset} | {case.policy} | {case.jit} | {case.ops} | "
                  f"{r.sec_per_kimg:.1f} | {r.img_per_sec:.1f} |", flush=True)


if __name__ == "__main__":
    cli.run(main)
