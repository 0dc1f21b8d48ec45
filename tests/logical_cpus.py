"""The start of the scripts that tests run in a subprocess to compute on several replicas of one
CPU (tests/metrics/replicas_check.py, tests/metrics/detectors_replicas_check.py,
tests/train/replicas_check.py). Logical devices must be configured before TensorFlow initialises,
which a test process has long done: hence scripts, each calling :func:`split` before it imports
anything that computes.
"""

import tensorflow as tf


def split(count: int = 2) -> None:
    """Splits the first physical CPU into ``count`` logical devices, ``/cpu:0`` to ``/cpu:<count-1>``."""
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * count)
