"""Benchmarks, printed as markdown tables for docs/PERFORMANCE.md.

  python -m runners.benchmark --what=generator,training --resolutions=64,256 \\
      --peer=/path/to/stylegan2-ada-pytorch --peer_python=/path/to/venv-with-torch/bin/python
  python -m runners.benchmark --what=training --resolutions=32,64,128,256 --train_batch=4,8,16,32
  python -m runners.benchmark --what=training --ops=ref,custom --policies=fp32 --profile
  python -m runners.benchmark --what=training --resolutions=32 --preset=small --augment=none,bgc,bgcfnc

Every case runs in a fresh process of its own (so that each reports its own peak memory). With
``--peer``, NVIDIA's stylegan2-ada-pytorch runs the same networks, loss and schedule in float32
(``tf_stylegan2/benchmark_peer.py``, under ``--peer_python``, which must import torch; nothing is
downloaded), and the processes of one configuration take their timed units in turn. The run
starts by measuring a 2048 x 2048 matmul in float32 and bfloat16, the limit that each row's
FLOP rate (counted on our traced graphs) is set against.

``--preset=ada`` (the default) is stylegan2-ada-pytorch's network for datasets below 512 px:
channel_base 16384, channel_max 512, z = w = 512, 8 mapping layers, skip G, resnet D. Training
reports the median of ``--cycles`` lazy-regularization cycles (16 minibatches each) after one cycle
and a minibatch of warm-up; the generator the median of ``--iters`` calls after two.
``--policies`` takes Keras dtype policies or the training precisions 'fp32' and 'mixed'.
"""

from __future__ import annotations

import json
import platform
import statistics
import sys
from typing import Dict, List, Optional

from absl import flags

from custom_ops.loader import IMPLS
from runners import cli

WHAT = ("generator", "training")

flags.DEFINE_list("what", ["generator"], f"Benchmarks to run: {', '.join(WHAT)}.")
flags.DEFINE_list("resolutions", ["64"], "Image resolutions.")
flags.DEFINE_integer("batch", 8, "Generator batch size.")
flags.DEFINE_list("policies", ["float32", "mixed_bfloat16"],
                  "Keras dtype policies to compare, or the precisions fp32 / mixed.")
flags.DEFINE_integer("iters", 5, "Generator: timed calls per case, median reported.")
flags.DEFINE_integer("cycles", 2, "Training: timed lazy-regularization cycles per case, median reported.")
flags.DEFINE_list("train_batch", ["8"], "Training: global batch sizes.")
flags.DEFINE_enum("train_unit", "cycle", ["cycle", "phases"], "Training: the timed unit, a whole lazy-"
                  "regularization cycle or one composed of its parts timed once each (a plain minibatch x 16, "
                  "Greg x 4, Dreg x 1), both sides alike.")
flags.DEFINE_integer("train_warmup", 0, "Training: warm-up minibatches before the timed cycles (0: one cycle and "
                     "one more, every phase run twice; 1 traces and runs every phase once).", lower_bound=0)
flags.DEFINE_string("preset", "ada", "Training: 'ada' (stylegan2-ada's width, see above) or a configuration "
                    "preset (tf_stylegan2.config.PRESETS).")
flags.DEFINE_list("jit", ["false"], "XLA settings to compare (booleans, as absl spells them).")
flags.DEFINE_list("fused_modconv", ["false"], "Generator: fused modulation settings to compare (booleans).")
flags.DEFINE_list("ops", ["auto"], f"Ops implementations to compare ({', '.join(IMPLS)}; cuda: the GPU kernels).")
flags.DEFINE_list("augment", ["none"], "Training: discriminator augmentation pipelines to compare (none, or "
                  "tf_stylegan2.train.augment.PIPELINES names, run at a fixed p of 1).")
flags.DEFINE_string("peer", None, "A stylegan2-ada-pytorch checkout to run side by side (float32).")
flags.DEFINE_string("peer_python", sys.executable, "The Python (with torch) that runs the peer.")
flags.DEFINE_bool("profile", False, "Training: after the timed cycles, where the time goes (each phase alone, "
                  "per op: TensorFlow's and PyTorch's profilers).")
flags.DEFINE_string("worker", None, "Internal: run one benchmark process of a comparison (a JSON spec).")
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


def _ints(values: List[str], flag: str) -> List[int]:
    try:
        return [int(v) for v in values]
    except ValueError:
        raise ValueError(f"--{flag}: expected integers, got {','.join(values)}") from None


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _fmt(value: Optional[float], digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def main() -> None:
    from tf_stylegan2 import benchmark, benchmark_peer

    if FLAGS.worker:
        benchmark.serve_worker(json.loads(FLAGS.worker))
        return
    unknown = [w for w in FLAGS.what if w not in WHAT]
    if unknown:
        raise ValueError(f"unknown benchmark(s) {unknown}; expected: {', '.join(WHAT)}")
    resolutions = _ints(FLAGS.resolutions, "resolutions")
    batches = _ints(FLAGS.train_batch, "train_batch")
    jits, fused = _bools(FLAGS.jit, "jit"), _bools(FLAGS.fused_modconv, "fused_modconv")
    generator_cases = []
    if "generator" in FLAGS.what:
        generator_cases = benchmark.generator_cases(resolutions, FLAGS.batch, FLAGS.policies, FLAGS.ops, fused, jits)
    training_cases = []
    if "training" in FLAGS.what:
        width = dict(benchmark.ADA_WIDTH) if FLAGS.preset == "ada" else {"preset": FLAGS.preset}
        augments = [None if name == "none" else name for name in FLAGS.augment]
        training_cases = benchmark.training_cases(resolutions, batches, FLAGS.policies, jits, FLAGS.ops,
                                                  augments=augments, **width)
    problem = benchmark.peer_problem(FLAGS.peer, FLAGS.peer_python) if FLAGS.peer else None

    import tensorflow as tf

    print(f"TensorFlow {tf.__version__}, {platform.processor() or platform.machine()}, "
          f"{len(tf.config.list_physical_devices('GPU'))} GPU(s)")
    if FLAGS.peer:
        print(f"peer: {benchmark.PEER_NAME} at {FLAGS.peer}, " + (f"skipped: {problem}" if problem else
                                                                   f"run by {FLAGS.peer_python} with "
                                                                   + " ".join(f"{k}={v}" for k, v in
                                                                              benchmark_peer.OMP_ENV.items())))
    peaks = _matmul_peaks({c.policy for c in generator_cases + training_cases})
    if generator_cases:
        _generator_table(benchmark, generator_cases, problem, peaks)
    if training_cases:
        _training_tables(benchmark, training_cases, problem, peaks)


def _compute_dtype(policy: str) -> str:
    return policy.split("_", 1)[1] if policy.startswith("mixed_") else policy


def _matmul_peaks(policies) -> Dict[str, float]:
    """GFLOP/s of a 2048 x 2048 matmul in each compute dtype of the run (float32 always), from the
    fastest round: a limit is what the machine delivers at best, and on a shared machine the
    median measures the other processes' load."""
    from tf_stylegan2 import benchmark

    dtypes = sorted({"float32"} | {_compute_dtype(p) for p in policies})
    _log("matmul peak")
    results = benchmark.side_by_side([benchmark.our_side(d, benchmark.matmul_spec(d)) for d in dtypes], FLAGS.iters,
                                     log=_log)
    print()
    print(f"| matmul 2048 x 2048 | GFLOP/s (fastest of {FLAGS.iters}) |")
    print("|---|---|")
    peaks = {}
    for dtype, r in zip(dtypes, results):
        if r.error:
            raise RuntimeError(f"the matmul peak could not be measured: {r.error}")
        peaks[dtype] = r.ready["flops_per_unit"] / min(r.seconds) / 1e9
        print(f"| {dtype} | {peaks[dtype]:.0f} |", flush=True)
    return peaks


def _groups(cases, key):
    groups: Dict[tuple, list] = {}
    for case in cases:
        groups.setdefault(key(case), []).append(case)
    return groups


def _rate(r, gflop_per_image: Optional[float], peak: Optional[float]):
    """(img/s, GFLOP/s, % of peak) of a result."""
    if r.median is None:
        return None, None, None
    ips = r.ready["images_per_unit"] / r.median
    if gflop_per_image is None:
        return ips, None, None
    achieved = ips * gflop_per_image
    return ips, achieved, (100 * achieved / peak if peak else None)


def _ours_label(case) -> str:
    augment = getattr(case, "augment", None)  # training cases only
    return f"ours {case.policy} ops={case.ops}" + (f" augment={augment}" if augment else "")


def _generator_table(benchmark, cases, problem, peaks) -> None:
    print()
    print("| resolution | batch | side | policy | fused_modconv | XLA | ops | G forward img/s | vs peer | GFLOP/img "
          "| GFLOP/s | % of matmul peak | peak RSS MiB |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for (res, batch), group in _groups(cases, lambda c: (c.resolution, c.batch)).items():
        sides = [benchmark.our_side(_ours_label(c), benchmark.generator_spec(c)) for c in group]
        if FLAGS.peer:
            sides.append(benchmark.peer_side(group[0], FLAGS.peer, FLAGS.peer_python, problem))
        _log(f"generator {res} px, batch {batch}")
        results = benchmark.side_by_side(sides, FLAGS.iters, log=_log)
        peer = results[-1] if FLAGS.peer else None
        fp32 = next((r for c, r in zip(group, results) if c.policy == "float32" and not r.error), None)
        rows = [(c, r) for c, r in zip(group, results)] + ([(None, peer)] if peer else [])
        for case, r in rows:
            gflop = (r if case else fp32).ready.get("flops_per_image") if (r if case else fp32) else None
            gflop = gflop / 1e9 if gflop else None
            policy = case.policy if case else "float32"
            ips, achieved, share = _rate(r, gflop, peaks.get(_compute_dtype(policy)))
            speedup = ips / _rate(peer, None, None)[0] if case and peer and peer.median and ips else None
            what = (f"| {res} | {batch} | ours | {case.policy} | {case.fused_modconv} | {case.jit} | {case.ops} "
                    if case else f"| {res} | {batch} | {benchmark.PEER_NAME} | float32 | False | - | ref ")
            status = r.error and f"skipped: {r.error}"
            print(what + (f"| {status} | | | | | | |" if status else
                          f"| {ips:.1f} | {_fmt(speedup, 2)} | {_fmt(gflop, 2)} | {_fmt(achieved, 0)} "
                          f"| {_fmt(share, 0)} | {_fmt(r.peak_rss_mib, 0)} |"), flush=True)


def _training_tables(benchmark, cases, problem, peaks) -> None:
    print()
    print("| resolution | batch | side | policy | XLA | ops | augment | sec/kimg | img/s | vs peer | first minibatch s "
          "| GFLOP/img | GFLOP/s | % of matmul peak | peak RSS MiB |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    profiles, parts = [], []
    for (res, batch), group in _groups(cases, lambda c: (c.resolution, c.batch)).items():
        warmup = FLAGS.train_warmup or None
        sides = [benchmark.our_side(_ours_label(c), benchmark.training_spec(c, warmup, FLAGS.train_unit))
                 for c in group]
        if FLAGS.peer:
            sides.append(benchmark.peer_side(group[0], FLAGS.peer, FLAGS.peer_python, problem, warmup,
                                             FLAGS.train_unit))
        _log(f"training {res} px, batch {batch}")
        results = benchmark.side_by_side(sides, FLAGS.cycles, profile=FLAGS.profile, log=_log)
        peer = results[-1] if FLAGS.peer else None
        fp32 = next((r for c, r in zip(group, results)
                     if c.policy == "float32" and c.augment is None and not r.error), None)
        rows = [(c, r) for c, r in zip(group, results)] + ([(None, peer)] if peer else [])
        for case, r in rows:
            source = r if case else fp32
            gflop = source.ready.get("flops_per_image") / 1e9 if source and source.ready else None
            policy = case.policy if case else "float32"
            ips, achieved, share = _rate(r, gflop, peaks.get(_compute_dtype(policy)))
            peer_ips = _rate(peer, None, None)[0] if peer else None
            speedup = ips / peer_ips if case and ips and peer_ips else None
            what = (f"| {res} | {batch} | ours | {case.policy} | {case.jit} | {case.ops} | {case.augment or 'none'} "
                    if case else f"| {res} | {batch} | {benchmark.PEER_NAME} | float32 | - | ref | none ")
            if r.error:
                print(what + f"| skipped: {r.error} | | | | | | | |", flush=True)
                continue
            print(what + f"| {1000 / ips:.0f} | {ips:.2f} | {_fmt(speedup, 2)} | {_fmt(r.ready.get('first_s'), 0)} "
                  f"| {_fmt(gflop, 1)} | {_fmt(achieved, 0)} | {_fmt(share, 0)} | {_fmt(r.peak_rss_mib, 0)} |",
                  flush=True)
            if r.parts:
                parts.append((res, batch, r))
            if r.profile:
                profiles.append((f"{res} px, batch {batch}, {r.side.label}", r))
    if parts:
        _print_parts(parts)
    for title, r in profiles:
        _print_profile(title, r)


def _print_parts(rows) -> None:
    """The parts of each composed cycle (--train_unit=phases), seconds, median over the rounds."""
    names = list(dict.fromkeys(name for _, _, r in rows for part in r.parts for name in part))
    print()
    print("| resolution | batch | side | " + " | ".join(f"{n} s" for n in names) + " |")
    print("|---" * (3 + len(names)) + "|")
    for res, batch, r in rows:
        cells = [_fmt(statistics.median(p[n] for p in r.parts if n in p), 2) if any(n in p for p in r.parts)
                 else "-" for n in names]
        print(f"| {res} | {batch} | {r.side.label} | " + " | ".join(cells) + " |", flush=True)


def _print_profile(title: str, r) -> None:
    print()
    print(f"Profile: {title}")
    profile = r.profile
    if "phase_seconds" in profile:  # ours
        flops = r.ready.get("phase_flops", {})
        print()
        print("| phase alone | s per call | GFLOP per call | GFLOP/s |")
        print("|---|---|---|---|")
        for name, seconds in profile["phase_seconds"].items():
            gflop = flops.get(name, 0) / 1e9
            print(f"| {name} | {seconds:.2f} | {gflop:.1f} | {gflop / seconds:.0f} |" if gflop else
                  f"| {name} | {seconds:.3f} | - | - |")
        for name, ops in profile["phase_ops"].items():
            total = sum(ops.values())
            print()
            print(f"| {name}: op | s (summed over threads) | share of the top ops |")
            print("|---|---|---|")
            for op, seconds in ops.items():
                print(f"| {op} | {seconds:.2f} | {100 * seconds / total:.0f} % |")
    else:  # the peer's torch profile
        print()
        print("| scope (NVIDIA's record_function) | s per cycle |")
        print("|---|---|")
        for name, seconds in profile["scopes"].items():
            print(f"| {name} | {seconds:.1f} |")
        print()
        print("| op | self s per cycle |")
        print("|---|---|")
        for name, seconds in profile["ops"].items():
            print(f"| {name} | {seconds:.1f} |")


if __name__ == "__main__":
    cli.run(main)
