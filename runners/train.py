"""Train a StyleGAN2: lazy R1 and path-length regularization, style mixing, G EMA, checkpoints.

  python -m runners.train --outdir=runs --data=builtin:shapes32 --cfg=small --kimg=20 --tick=1 --snap=5 --mirror
  python -m runners.train --outdir=runs --data=data/photos256.zip --cfg=paper256 --mirror --metrics=
  python -m runners.train --resume=runs/00003-photos256-mirror-paper256-b64          # continue a run
  python -m runners.train --outdir=runs --data=data/dogs256.zip --mirror --resume=ffhq256.pkl --freezed=10  # fine-tune
  python -m runners.train --flagfile=runs/00003-photos256-mirror-paper256-b64/flags.txt --outdir=runs2

Uses every visible GPU (MirroredStrategy), or the machines named by TF_CONFIG
(MultiWorkerMirroredStrategy). Each run gets a numbered directory under --outdir holding its
options (training_options.json, flags.txt), progress (log.txt, stats.jsonl, TensorBoard events),
checkpoints, G_ema snapshots (.keras, loadable by every runner) and PNG grids. A resumed run keeps
its networks, data and seed; other explicitly given flags (e.g. --kimg) change from there on.
D's images are augmented with adaptive discriminator augmentation (--aug=ada, stylegan2-ada's
default) unless --aug=noaug.
"""

from __future__ import annotations

from absl import flags, logging

from runners import cli
from tf_stylegan2.train import options

options.define_flags(flags.FLAGS)  # one flag per TrainOptions field
flags.adopt_module_key_flags(options)  # listed by --help as this program's own
flags.DEFINE_string("resume", None, "A run directory (or one of its checkpoints): continue it in place. A network "
                    "file: start a new run from its weights (fine-tuning): an official pickle (StyleGAN2 TF1, "
                    "stylegan2-ada-pytorch) or a generator .keras file with --resume_d.")
flags.DEFINE_string("resume_d", None, "The discriminator .keras file that goes with --resume=<generator .keras>.")
FLAGS = flags.FLAGS


def main() -> None:
    logging.set_verbosity(logging.WARNING)  # TF's INFO lines (strategy devices, checkpoint sharding)
    from tf_stylegan2.train.loop import setup, train

    train_options, given = options.from_flags(FLAGS)
    train(setup(train_options, resume=FLAGS.resume, resume_d=FLAGS.resume_d, given=given))


if __name__ == "__main__":
    cli.run(main)
