"""Train a StyleGAN2: lazy R1 and path-length regularization, style mixing, G EMA, checkpoints.

  python -m runners.train --outdir=runs --data=builtin:shapes32 --cfg=small --kimg=20 --tick=1 --snap=5 --mirror
  python -m runners.train --outdir=runs --data=data/photos256.zip --cfg=paper256 --mirror --metrics=
  python -m runners.train --resume=runs/00003-photos256-mirror-paper256-b64          # continue a run
  python -m runners.train --flagfile=runs/00003-photos256-mirror-paper256-b64/flags.txt --outdir=runs2

Uses every visible GPU (MirroredStrategy), or the machines named by TF_CONFIG
(MultiWorkerMirroredStrategy). Each run gets a numbered directory under --outdir holding its
options (training_options.json, flags.txt), progress (log.txt, stats.jsonl, TensorBoard events),
checkpoints, G_ema snapshots (.keras, loadable by every runner) and PNG grids. A resumed run keeps
its networks, data and seed; other explicitly given flags (e.g. --kimg) change from there on.
"""

from __future__ import annotations

import dataclasses

from absl import flags, logging

from runners import cli

flags.DEFINE_string("outdir", "runs", "Where new run directories are created.")
flags.DEFINE_string("data", "builtin:shapes32", "Training data: a folder or .zip in the training format "
                    "(runners/dataset_tool.py) or builtin:<name> (shapes16, shapes32, shapes64).")
flags.DEFINE_string("cfg", "auto", "Preset: auto, small, stylegan2, paper256, paper512, paper1024, cifar, "
                    "config-e, config-f.")
flags.DEFINE_bool("cond", False, "Conditional training on the dataset's labels (dataset.json).")
flags.DEFINE_bool("mirror", False, "Augment with x-flips (half of each epoch's images).")
flags.DEFINE_integer("seed", 0, "Seed of the initial weights and of every random number of training.")
flags.DEFINE_integer("batch", None, "Global batch size over all replicas (default: the preset's).")
flags.DEFINE_float("gamma", None, "R1 weight (default: the preset's).")
flags.DEFINE_float("kimg", None, "Training length in thousands of images (default: the preset's).")
flags.DEFINE_float("glr", None, "G learning rate (default: the preset's).")
flags.DEFINE_float("dlr", None, "D learning rate (default: the preset's).")
flags.DEFINE_integer("cbase", None, "Channel base: channels at resolution r are min(cbase / r, cmax).")
flags.DEFINE_integer("cmax", None, "Maximum channels per layer.")
flags.DEFINE_integer("map", None, "Mapping network depth.")
flags.DEFINE_integer("mbstd_group", None, "Minibatch standard deviation group size.")
flags.DEFINE_float("ema_kimg", None, "G_ema half-life in kimg (default: the preset's).")
flags.DEFINE_float("tick", 4.0, "Progress interval in kimg.")
flags.DEFINE_integer("snap", 50, "Snapshot interval in ticks: checkpoint, G_ema .keras, PNG grid, metrics.")
flags.DEFINE_integer("keep", 3, "How many checkpoints to keep.")
flags.DEFINE_list("metrics", [], "Metrics per snapshot: fd2k_clf, kid2k_clf (class-labelled datasets).")
flags.DEFINE_enum("precision", "fp32", ["fp32", "mixed"], "mixed: float16 + loss scaling on GPU, bfloat16 on CPU, "
                  "in the preset's highest-resolution blocks.")
flags.DEFINE_bool("jit", False, "Compile the training step with XLA (for GPUs; slower on CPU).")
flags.DEFINE_string("resume", None, "Continue this run directory (or one of its checkpoints) in place.")
FLAGS = flags.FLAGS


def main() -> None:
    logging.set_verbosity(logging.WARNING)  # TF's INFO lines (strategy devices, checkpoint sharding)
    from tf_stylegan2.train.loop import setup, train
    from tf_stylegan2.train.options import TrainOptions

    fields = [f.name for f in dataclasses.fields(TrainOptions)]
    values = {name: FLAGS[name].value for name in fields}
    values["metrics"] = tuple(values["metrics"])
    options = TrainOptions(**values)
    given = {name: getattr(options, name) for name in fields if FLAGS[name].present}
    train(setup(options, resume=FLAGS.resume, given=given))


if __name__ == "__main__":
    cli.run(main)
