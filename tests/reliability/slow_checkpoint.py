"""A program for test_stop_signals.py, run under runners.cli like every runner: writes a first
checkpoint, then a second one whose write is slowed down (the file ``writing`` in the run
directory marks its start), so that a test can signal it in the middle of the write."""

import os
import time

from absl import flags

from runners import cli

flags.DEFINE_string("run_dir", None, "Where the checkpoints go.", required=True)
flags.DEFINE_float("delay", 2.0, "Seconds the second write takes longer.")
FLAGS = flags.FLAGS


class SlowCheckpoint:
    def __init__(self, checkpoint):
        self.checkpoint = checkpoint

    def write(self, prefix):
        open(os.path.join(FLAGS.run_dir, "writing"), "w").close()
        time.sleep(FLAGS.delay)
        return self.checkpoint.write(prefix)


def main():
    from absl import logging
    import tensorflow as tf

    logging.set_verbosity(logging.WARNING)  # TF's INFO lines about checkpoint sharding

    from tf_stylegan2 import checkpoint

    groups = {"G": [tf.Variable(tf.range(1000, dtype=tf.float32), name="w")]}
    checkpoint.save(groups, FLAGS.run_dir, "ckpt-000000001")
    tf_checkpoint = checkpoint._tf_checkpoint
    checkpoint._tf_checkpoint = lambda g: SlowCheckpoint(tf_checkpoint(g))
    groups["G"][0].assign_add(tf.ones([1000]))
    checkpoint.save(groups, FLAGS.run_dir, "ckpt-000000002")
    print("saved")


if __name__ == "__main__":
    cli.run(main)
