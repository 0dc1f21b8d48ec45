"""Evaluate a generator with stylegan2-ada's metrics (FID, KID, precision/recall, PPL, IS).

  python -m runners.calc_metrics --metrics=fid50k_full,pr50k3_full --network=runs/00003-ffhq-paper256-b64 \
      --inception=pt_inception-2015-12-05-6726825d.pth --vgg16=vgg16.pt
  python -m runners.calc_metrics --metrics=fid50k_full --network=stylegan2-ffhq-config-f.pkl --data=ffhq.zip \
      --inception=pt_inception-2015-12-05-6726825d.pth

--network: a .keras file, a training run directory (its newest snapshot), a training checkpoint or
an official NVIDIA pickle. Each result is printed as one JSON line (stylegan2-ada's fields plus the
feature network's identity) and, for a network of a training run, appended to
metric-<name>.jsonl in the run directory. Real-image statistics are cached (--cache_dir), so a
second evaluation against the same dataset skips the real images. docs/METRICS.md lists the
metrics and the weights files.
"""

from __future__ import annotations

from absl import flags

from runners import cli
from tf_stylegan2.metrics.stats import DEFAULT_CACHE_DIR

flags.DEFINE_list("metrics", ["fid50k_full"], "Metrics, e.g. fid50k_full, kid50k_full, pr50k3_full, ppl2_wend, "
                  "is50k, quick ones such as fid2k_full (docs/METRICS.md).")
flags.DEFINE_string("network", None, "Generator: .keras file, training run directory, training checkpoint or "
                    "official .pkl.", required=True)
flags.DEFINE_string("data", None, "Real images: a dataset folder or .zip, or builtin:<name> (default: the training "
                    "run's dataset).")
flags.DEFINE_string("inception", None, "Inception-v3 weights of the FID graph (fid, kid, is metrics).")
flags.DEFINE_string("vgg16", None, "VGG16 weights (pr and ppl metrics).")
flags.DEFINE_string("lpips", None, "LPIPS linear layers (ppl metrics with torchvision's VGG16 file).")
flags.DEFINE_bool("mirror", None, "The legacy metrics' real images include x-flips (default: as the run trained).")
flags.DEFINE_float("truncation_psi", 1.0, "Truncation of the generated images (1 = none, as NVIDIA's metrics).")
flags.DEFINE_integer("seed", 0, "Seed of the generated images' latents, labels and noise.")
flags.DEFINE_integer("batch", 64, "Images per replica per feature-network call.")
flags.DEFINE_string("cache_dir", DEFAULT_CACHE_DIR, "Cache of real-image statistics ('' = none).")
FLAGS = flags.FLAGS


def main() -> None:
    import contextlib
    import os

    import tensorflow as tf

    from tf_stylegan2.checkpoint import load_generator, newest_snapshot, read_run_options, run_dir_of
    from tf_stylegan2.data import open_dataset
    from tf_stylegan2.fileio import UserError
    from tf_stylegan2.metrics import suite

    specs = [suite.parse_metric(name) for name in FLAGS.metrics]
    if not specs:
        raise UserError("--metrics is empty")
    suite.check_files_given(specs, FLAGS.inception, FLAGS.vgg16)
    suite.check_batch_size(FLAGS.batch)
    if not os.path.exists(FLAGS.network):
        raise UserError(f"no such file or directory: {FLAGS.network}")
    run_dir = run_dir_of(FLAGS.network)
    run_options = read_run_options(run_dir)["options"] if run_dir else {}
    data = FLAGS.data or run_options.get("data")
    if not data:
        raise UserError(f"--data is needed: {FLAGS.network} is not part of a training run that names its dataset")
    mirror = FLAGS.mirror if FLAGS.mirror is not None else bool(run_options.get("mirror", False))

    gpus = tf.config.list_logical_devices("GPU")
    strategy = tf.distribute.MirroredStrategy([d.name for d in gpus]) if len(gpus) > 1 else None
    dataset = open_dataset(data)
    with strategy.scope() if strategy else contextlib.nullcontext():  # one copy of G's weights per GPU
        G = load_generator(FLAGS.network)
    suite.check_generator(G, dataset)
    if FLAGS.truncation_psi != 1 and getattr(G.mapping, "w_avg", None) is None:
        raise UserError("--truncation_psi needs a generator that tracks w_avg (this one was built without)")
    suite.check_dataset(specs, dataset, mirror)
    networks = suite.load_networks(specs, inception=FLAGS.inception, vgg16=FLAGS.vgg16, lpips=FLAGS.lpips,
                                   dataset=dataset, seed=FLAGS.seed, strategy=strategy)
    snapshot = FLAGS.network
    if run_dir:  # NVIDIA's snapshot_pkl: the network file, relative to the run directory
        snapshot = newest_snapshot(run_dir) if os.path.abspath(FLAGS.network) == run_dir else os.path.abspath(snapshot)
    opts = suite.MetricOptions(dataset, networks, truncation_psi=FLAGS.truncation_psi, mirror=mirror,
                               seed=FLAGS.seed, cache_dir=FLAGS.cache_dir or None, strategy=strategy,
                               batch_size=FLAGS.batch)
    suite.evaluate(G, FLAGS.metrics, opts,
                   report=lambda record: print(suite.report_metric(record, run_dir, snapshot), flush=True))


if __name__ == "__main__":
    cli.run(main)
