"""Timing helpers for the benchmark runner: measured in one process, one case after another.

Two benchmarks: G forward throughput (``GeneratorCase``) and training speed (``TrainingCase``), the
latter as the training loop reports it, sec/kimg and img/s over whole lazy-regularization cycles.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import time
from typing import Callable, Iterator, List, Optional, Sequence, Tuple

import keras
import tensorflow as tf

from tf_stylegan2.config import resolve
from tf_stylegan2.networks import Generator
from tf_stylegan2.precision import PRECISIONS, policy_name


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
    ops: str = "auto"  # custom_ops.loader.IMPLS


def generator_images_per_second(case: GeneratorCase, iters: int = 5) -> float:
    """G forward throughput (mapping + synthesis, constant noise) for one case."""
    keras.utils.set_random_seed(0)
    cfg = dataclasses.replace(resolve(case.preset, case.resolution).G, channel_base=case.channel_base)
    with _ops(case.ops):
        G = Generator(cfg, dtype=case.policy)
        z = tf.random.normal([case.batch, cfg.z_dim])
        run = tf.function(lambda z: G(z, noise_mode="const", fused_modconv=case.fused_modconv), jit_compile=case.jit)
        return case.batch / seconds_per_call(lambda: run(z).numpy(), iters=iters)


def keras_policy(name: str) -> str:
    """A Keras dtype policy name; the precisions 'fp32' and 'mixed' map as ``--precision`` does in
    training (mixed: float16 on a GPU, bfloat16 otherwise)."""
    return policy_name(name) if name in PRECISIONS else name


def generator_cases(resolutions: List[int], batch: int, policies: List[str],
                    ops: Sequence[str] = ("auto",)) -> List[GeneratorCase]:
    """The grid of G forward cases, without XLA with the compiled kernels (XLA runs the reference
    ops whatever is asked, so those rows would repeat the ref rows)."""
    for impl in ops:
        _check_ops(impl)
    return [
        GeneratorCase(res, batch, keras_policy(policy), fused, jit, ops=impl)
        for res in resolutions
        for policy in policies
        for fused in (False, True)
        for jit in (False, True)
        for impl in ops
        if not (jit and impl in COMPILED)
    ]


# ---- training ---------------------------------------------------------------------------------

COMPILED = ("custom", "cuda")  # the ops implementations that insist on the compiled kernels


@dataclasses.dataclass(frozen=True)
class TrainingCase:
    """One training configuration: a preset at ``resolution`` with the global ``batch``.

    ``ops`` selects the upfirdn2d / bias_act implementation (``custom_ops.loader``): 'ref' (stock
    TF ops), 'custom' (the compiled kernels, which XLA cannot compile), 'cuda' (the compiled GPU
    kernels; needs a GPU) or 'auto'. The width
    overrides (None: the preset's) exist to make tiny cases for tests. ``dataset`` defaults to the
    builtin shapes dataset of that resolution (16, 32 or 64 px).
    """

    resolution: int
    batch: int
    preset: str = "small"
    policy: str = "float32"  # Keras dtype policy: 'float32', 'mixed_bfloat16', 'mixed_float16'
    jit: bool = False
    ops: str = "ref"
    channel_base: Optional[int] = None
    channel_max: Optional[int] = None
    latent_dim: Optional[int] = None  # z_dim = w_dim
    dataset: Optional[str] = None

    @property
    def data_path(self) -> str:
        return self.dataset or f"builtin:shapes{self.resolution}"


@dataclasses.dataclass(frozen=True)
class TrainingResult:
    sec_per_kimg: float
    img_per_sec: float
    cycle_minibatches: int  # minibatches of one lazy-regularization cycle (16 for NVIDIA's schedule)
    warmup_minibatches: int
    cycle_seconds: Tuple[float, ...]  # wall time of each timed cycle
    cycle_steps: Tuple[Tuple[int, int], ...]  # G and D optimizer steps taken in each timed cycle


def training_config(case: TrainingCase, num_replicas: int = 1):
    """The case's preset resolved for its resolution and replicas, with its batch and widths."""
    cfg = resolve(case.preset, case.resolution, num_replicas=num_replicas)
    widths = {"channel_base": case.channel_base, "channel_max": case.channel_max}
    widths = {k: v for k, v in widths.items() if v is not None}
    latents = {} if case.latent_dim is None else {"z_dim": case.latent_dim, "w_dim": case.latent_dim}
    G = dataclasses.replace(cfg.G, **widths, **latents)
    D = dataclasses.replace(cfg.D, **widths)
    train = dataclasses.replace(cfg.train, batch_size=case.batch)
    return dataclasses.replace(cfg, G=G, D=D, train=train)


def _check_ops(impl: str) -> None:
    from custom_ops import loader

    if impl not in loader.IMPLS:
        raise ValueError(f"unknown ops implementation {impl!r}; expected one of {list(loader.IMPLS)}")
    if impl in COMPILED:
        try:
            loader.use_custom(impl)
        except RuntimeError as e:  # no library, a stale one, no GPU kernels or no GPU (ops=cuda)
            raise ValueError(f"ops={impl}: {e}") from None


@contextlib.contextmanager
def _ops(impl: str) -> Iterator[None]:
    """Ops implementation ``impl`` for everything traced inside, on every thread: the loader's
    scope is per thread and MirroredStrategy traces replicas on threads of its own, so the
    environment variable is set too (restored afterwards)."""
    from custom_ops import loader

    _check_ops(impl)
    previous = os.environ.get("TF_STYLEGAN2_OPS")
    os.environ["TF_STYLEGAN2_OPS"] = impl
    try:
        with loader.implementation(impl):
            yield
    finally:
        if previous is None:
            os.environ.pop("TF_STYLEGAN2_OPS", None)
        else:
            os.environ["TF_STYLEGAN2_OPS"] = previous


def training_speed(case: TrainingCase, iters: int = 3, strategy: Optional[tf.distribute.Strategy] = None
                   ) -> TrainingResult:
    """Training speed of one case: ``iters`` timed lazy-regularization cycles, median reported.

    Builds the state and Trainer as ``runners.train`` does (MirroredStrategy over the GPUs, else
    the CPU; loss scaling for mixed_float16 only) and feeds it the training input pipeline. Warm-up
    runs minibatches 0..C (C = one cycle, 16 minibatches), so that every phase has been traced
    and then called again; each timed cycle then holds every phase as often as its interval says
    (16 Gmain and Dmain, 4 Greg, 1 Dreg). The data pipeline's ``next`` is timed with the step,
    as in the training loop's sec/kimg.
    """
    from tf_stylegan2.data import open_dataset
    from tf_stylegan2.train.inputs import distributed_samples
    from tf_stylegan2.train.loop import make_strategy
    from tf_stylegan2.train.state import create_state
    from tf_stylegan2.train.step import Trainer

    if iters < 1:
        raise ValueError(f"iters must be >= 1, got {iters}")
    if case.jit and case.ops in COMPILED:
        raise ValueError(f"ops={case.ops} cannot run under XLA (jit): XLA cannot compile the compiled kernels")
    keras.backend.clear_session()
    strategy = strategy or make_strategy()
    replicas = strategy.num_replicas_in_sync
    if case.batch % replicas:
        raise ValueError(f"batch {case.batch} is not divisible by the {replicas} replicas")
    dataset = open_dataset(case.data_path)
    if dataset.info.resolution != case.resolution:
        raise ValueError(f"dataset {case.data_path} is {dataset.info.resolution} px, the case {case.resolution} px")
    cfg = training_config(case, replicas)
    loss_scaling = case.policy == "mixed_float16"
    with _ops(case.ops):
        with strategy.scope():
            state = create_state(cfg, case.policy, 0, loss_scaling)
            trainer = Trainer(state, cfg.train, strategy, jit=case.jit, loss_scaling=loss_scaling)
        cycle = math.lcm(*(phase.interval for phase in trainer.phases))
        batches = iter(distributed_samples(strategy, dataset, case.batch, use_labels=False, mirror=False, seed=0,
                                           start_image=0, z_dim=cfg.G.z_dim))

        def minibatch() -> None:
            stats = trainer.iteration(next(batches))
            for value in stats.values():  # wait for the step, as the training loop does
                float(value)

        def optimizer_steps() -> Tuple[int, int]:
            return int(state.G_opt.iterations.numpy()), int(state.D_opt.iterations.numpy())

        warmup = cycle + 1
        for _ in range(warmup):
            minibatch()
        times, steps = [], []
        for _ in range(iters):
            before = optimizer_steps()
            start = time.perf_counter()
            for _ in range(cycle):
                minibatch()
            times.append(time.perf_counter() - start)
            steps.append(tuple(now - then for now, then in zip(optimizer_steps(), before)))
    seconds = sorted(times)[len(times) // 2]
    sec_per_kimg = seconds / (cycle * case.batch) * 1000
    return TrainingResult(sec_per_kimg, 1000 / sec_per_kimg, cycle, warmup, tuple(times), tuple(steps))


def training_seconds_per_kimg(case: TrainingCase, iters: int = 3) -> float:
    """Training sec/kimg of one case (median of ``iters`` lazy-regularization cycles)."""
    return training_speed(case, iters).sec_per_kimg


def training_cases(resolutions: List[int], batch: int, policies: List[str], jits: List[bool], ops: List[str],
                   preset: str = "small") -> List[TrainingCase]:
    """The grid of cases, without XLA with the compiled kernels (XLA cannot compile them).

    Bad input fails here, before anything runs: an unknown preset or ops implementation, a
    resolution without a builtin shapes dataset, ops 'custom' or 'cuda' without usable kernels.
    """
    from tf_stylegan2.datasets import BUILTIN

    for impl in ops:
        _check_ops(impl)
    for res in resolutions:
        resolve(preset, res)
        if f"shapes{res}" not in BUILTIN:
            shapes = sorted(int(name[len("shapes"):]) for name in BUILTIN if name.startswith("shapes"))
            raise ValueError(f"training benchmarks run on the builtin shapes datasets: resolution {res} is not one "
                             f"of {shapes}")
    return [
        TrainingCase(res, batch, preset, keras_policy(policy), jit, impl)
        for res in resolutions
        for policy in policies
        for jit in jits
        for impl in ops
        if not (jit and impl in COMPILED)
    ]
