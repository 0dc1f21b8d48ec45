"""Run as a script by tests/train/test_distributed.py, once per worker, with TF_CONFIG set:
``multi_worker_check.py OUTDIR WORKER_INDEX``. Trains a tiny model with MultiWorkerMirroredStrategy
and writes this worker's final weights to OUTDIR/worker<i>.npz."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
import numpy as np  # noqa: E402

from tf_stylegan2.train.loop import setup, train  # noqa: E402
from tf_stylegan2.train.options import TrainOptions  # noqa: E402

outdir, index = sys.argv[1], int(sys.argv[2])
options = TrainOptions(outdir=os.path.join(outdir, "runs"), data="builtin:shapes16", cfg="small", cbase=128, cmax=16,
                       batch=4, kimg=0.032, tick=0.016, snap=1, mirror=True)
run = setup(options)
stats = train(run)
networks = (("G", run.state.G), ("D", run.state.D), ("G_ema", run.state.G_ema))
weights = {f"{name}/{i}": v.numpy() for name, model in networks for i, v in enumerate(model.weights)}
np.savez(os.path.join(outdir, f"worker{index}.npz"), cur_nimg=int(run.state.cur_nimg.numpy()),
         replicas=run.strategy.num_replicas_in_sync, chief=run.is_chief, **weights)
