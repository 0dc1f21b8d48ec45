"""Timing helpers for the benchmark runner: measured in one process, one case after another."""

from __future__ import annotations

import dataclasses
import time
from typing import Callable, List

import keras
import tensorflow as tf

from tf_stylegan2.config import resolve
from tf_stylegan2.networks import Generator


def seconds_per_call(fn: Callable[[], object], warmup: int = 2, iters: int = 5) -> float:
    """Median wall time of ``fn()`` after ``warmup`` calls (tracing and autotuning excluded)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(iters):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return sorted(times)[len(times) // 2]


@dataclasses.dataclass(frozen=True)
class GeneratorCase:
    resolution: int
    batch: int
    policy: str  # Keras dtype policy: 'float32', 'mixed_bfloat16', 'mixed_float16'
    fused_modconv: bool
    jit: bool
    channel_base: int = 16384
    preset: str = "stylegan2"


def generator_images_per_second(case: GeneratorCase, iters: int = 5) -> float:
    """G forward throughput (mapping + synthesis, constant noise) for one case."""
    keras.utils.set_random_seed(0)
    cfg = dataclasses.replace(resolve(case.preset, case.resolution).G, channel_base=case.channel_base)
    G = Generator(cfg, dtype=case.policy)
    z = tf.random.normal([case.batch, cfg.z_dim])
    run = tf.function(lambda z: G(z, noise_mode="const", fused_modconv=case.fused_modconv), jit_compile=case.jit)
    return case.batch / seconds_per_call(lambda: run(z).numpy(), iters=iters)


def generator_cases(resolutions: List[int], batch: int, policies: List[str]) -> List[GeneratorCase]:
    return [
        GeneratorCase(res, batch, policy, fused, jit)
        for res in resolutions
        for policy in policies
        for fused in (False, True)
        for jit in (False, True)
    ]
