"""Choosing the mixed-precision dtype policy for the machine at hand.

'mixed' means float16 with loss scaling on GPUs and bfloat16 elsewhere: this CPU has no float16
convolution kernels (TF falls back to Eigen, 6.5x slower than float32) but fast bfloat16 ones.
"""

from __future__ import annotations

from typing import Optional

import tensorflow as tf

PRECISIONS = ("fp32", "mixed")


def mixed_policy_name(device_type: Optional[str] = None) -> str:
    """'mixed_float16' on GPU, 'mixed_bfloat16' otherwise; ``device_type`` defaults to what TF sees."""
    if device_type is None:
        device_type = "GPU" if tf.config.list_physical_devices("GPU") else "CPU"
    return "mixed_float16" if device_type.upper() == "GPU" else "mixed_bfloat16"


def policy_name(precision: str, device_type: Optional[str] = None) -> str:
    """Keras dtype policy name for ``precision`` ('fp32' or 'mixed')."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; expected one of {list(PRECISIONS)}")
    return "float32" if precision == "fp32" else mixed_policy_name(device_type)
