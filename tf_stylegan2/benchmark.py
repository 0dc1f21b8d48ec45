"""Timing helpers for the benchmark runner.

Two benchmarks: G forward throughput (``GeneratorCase``) and training speed (``TrainingCase``), the
latter as the training loop reports it, sec/kimg and img/s over whole lazy-regularization cycles.
Both can run in one process, one case after another, or side by side with NVIDIA's
stylegan2-ada-pytorch (:func:`side_by_side`): every side and configuration in a process of its
own (so that peak memory is comparable), timed units alternating between the sides.

What the hardware allows is measured in the same run (a 2048 x 2048 matmul, :func:`matmul_spec`) and set
against the work our graphs do, counted from the traced graphs themselves (:func:`graph_flops`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import keras
import numpy as np
import tensorflow as tf

from tf_stylegan2.config import resolve
from tf_stylegan2.networks import Generator
from tf_stylegan2.precision import PRECISIONS, policy_name


# ---- work counted on the traced graphs ----------------------------------------------------------

# Convolutions and matrix products, the ops whose multiply-adds are the networks' work: FLOPs are
# 2 per multiply-add. The FIR filters of up/down-sampling (depthwise convolutions in the reference
# upfirdn2d, or its compiled op) are left out, so that the count does not depend on the ops chosen.
_CONV = ("Conv2D", "Conv2DBackpropInput", "Conv2DBackpropFilter")
_MATMUL = ("MatMul", "BatchMatMul", "BatchMatMulV2", "BatchMatMulV3")
_CALLS = ("PartitionedCall", "StatefulPartitionedCall")


def _shape(tensor: tf.Tensor, op: tf.Operation) -> List[int]:
    shape = tensor.shape
    if not shape.is_fully_defined():
        raise ValueError(f"cannot count the FLOPs of {op.type} {op.name!r}: its shape {shape} is not static")
    return shape.as_list()


def op_flops(op: tf.Operation) -> int:
    """FLOPs of one convolution or matrix product in a graph (2 per multiply-add); 0 for other ops.

    Every convolution kind costs ``2 * kh * kw * in_per_group`` per element of its forward output:
    Conv2D's output, or the ``out_backprop`` of its two gradients (the output of the forward
    convolution they belong to). A matmul costs ``2 * k`` per output element.
    """
    if op.type == "Conv2D":
        kh, kw, cin, _ = _shape(op.inputs[1], op)
        return 2 * kh * kw * cin * int(np.prod(_shape(op.outputs[0], op)))
    if op.type == "Conv2DBackpropInput":
        kh, kw, cin, _ = _shape(op.inputs[1], op)
        return 2 * kh * kw * cin * int(np.prod(_shape(op.inputs[2], op)))
    if op.type == "Conv2DBackpropFilter":
        kh, kw, cin, _ = _shape(op.outputs[0], op)
        return 2 * kh * kw * cin * int(np.prod(_shape(op.inputs[2], op)))
    if op.type in _MATMUL:
        a = _shape(op.inputs[0], op)
        transposed = any(op.get_attr(k) for k in ("transpose_a", "adj_x") if k in op.node_def.attr)
        k = a[-2] if transposed else a[-1]
        return 2 * k * int(np.prod(_shape(op.outputs[0], op)))
    return 0


def graph_flops(graph: tf.Graph) -> int:
    """FLOPs of the convolutions and matrix products of ``graph`` (:func:`op_flops`), with the
    bodies of the functions it calls. The training graphs hold no loop or branch around a
    convolution; a ValueError says so if one ever does, rather than counting it wrongly."""
    total = 0
    for op in graph.get_operations():
        total += op_flops(op)
        if op.type in _CALLS:
            total += graph_flops(_called_graph(graph, op.get_attr("f").name))
        elif op.type in ("While", "StatelessWhile", "If", "StatelessIf"):
            attrs = ("body",) if "While" in op.type else ("then_branch", "else_branch")
            if any(graph_flops(_called_graph(graph, op.get_attr(a).name)) for a in attrs):
                raise ValueError(f"{op.type} {op.name!r} holds convolutions or matmuls: their count would be a guess")
    return total


def _called_graph(graph: tf.Graph, name: str) -> tf.Graph:
    from tensorflow.python.framework import function_def_to_graph

    while graph is not None:
        fn = graph._get_function(name)  # the graph's function library (no public accessor in TF 2.21)
        if fn is not None:
            return getattr(fn, "graph", None) or function_def_to_graph.function_def_to_graph(fn.cached_definition)
        graph = getattr(graph, "outer_graph", None)
    raise ValueError(f"function {name!r} is not in the graph's library")


# ---- where the time goes: the TF profiler's per-op totals --------------------------------------


def op_seconds(fn: Callable[[], object]) -> Dict[str, float]:
    """Seconds spent in each op type while ``fn()`` runs, from TensorFlow's profiler, summed over
    the threads that ran them (two ops on two cores count twice), largest first. Op types are
    those that ran: oneDNN's (``_MklNativeConv2DBackpropFilter``), fused by grappler, and so on."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        try:
            fn()
        finally:
            tf.profiler.experimental.stop()
        paths = glob.glob(os.path.join(logdir, "**", "*.xplane.pb"), recursive=True)
        space = xplane_pb2.XSpace()
        with open(paths[0], "rb") as f:
            space.ParseFromString(f.read())
    totals: Dict[str, float] = {}
    for plane in space.planes:
        for line in plane.lines:
            if not line.name.startswith("tf_Compute") and "Eigen" not in line.name:
                continue
            for event in line.events:
                name = plane.event_metadata[event.metadata_id].name
                if ":" not in name or name.startswith("ThreadpoolListener"):
                    continue  # op events are "<op name>:<op type>"
                kind = name.rsplit(":", 1)[1]
                totals[kind] = totals.get(kind, 0.0) + event.duration_ps * 1e-12
    return dict(sorted(totals.items(), key=lambda kv: -kv[1]))


# ---- generator forward --------------------------------------------------------------------------


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


def generator_config(case: GeneratorCase):
    """The case's G: its preset at its resolution with its channel_base."""
    return dataclasses.replace(resolve(case.preset, case.resolution).G, channel_base=case.channel_base)


class GeneratorRun:
    """A case's G and its traced forward (mapping + synthesis, constant noise); a context manager,
    inside which ``call()`` runs one batch."""

    def __init__(self, case: GeneratorCase):
        self.case = case
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> "GeneratorRun":
        case = self.case
        keras.utils.set_random_seed(0)
        g_config = generator_config(case)
        self._stack.enter_context(_ops(case.ops))
        self.G = Generator(g_config, dtype=case.policy)
        self.z = tf.random.normal([case.batch, g_config.z_dim])
        self.fn = tf.function(lambda z: self.G(z, noise_mode="const", fused_modconv=case.fused_modconv),
                              jit_compile=case.jit)
        return self

    def __exit__(self, *exc) -> None:
        self._stack.close()

    def call(self) -> None:
        self.fn(self.z).numpy()

    def flops_per_image(self) -> float:
        return graph_flops(self.fn.get_concrete_function(self.z).graph) / self.case.batch


def keras_policy(name: str) -> str:
    """A Keras dtype policy name; the precisions 'fp32' and 'mixed' map as ``--precision`` does in
    training (mixed: float16 on a GPU, bfloat16 otherwise)."""
    return policy_name(name) if name in PRECISIONS else name


def generator_cases(resolutions: List[int], batch: int, policies: List[str], ops: Sequence[str] = ("auto",),
                    fused: Sequence[bool] = (False, True), jits: Sequence[bool] = (False, True)
                    ) -> List[GeneratorCase]:
    """The grid of G forward cases, without XLA with the compiled kernels (XLA runs the reference
    ops whatever is asked, so those rows would repeat the ref rows)."""
    for impl in ops:
        _check_ops(impl)
    return [
        GeneratorCase(res, batch, keras_policy(policy), f, jit, ops=impl)
        for res in resolutions
        for policy in policies
        for f in fused
        for jit in jits
        for impl in ops
        if not (jit and impl in COMPILED)
    ]


# ---- training -----------------------------------------------------------------------------------

COMPILED = ("custom", "cuda")  # the ops implementations that insist on the compiled kernels


@dataclasses.dataclass(frozen=True)
class TrainingCase:
    """One training configuration: a preset at ``resolution`` with the global ``batch``.

    ``ops`` selects the upfirdn2d / bias_act implementation (``custom_ops.loader``): 'ref' (stock
    TF ops), 'custom' (the compiled kernels, which XLA cannot compile), 'cuda' (the compiled GPU
    kernels; needs a GPU) or 'auto'. The overrides (None: the preset's) set the widths and the
    mapping depth, e.g. stylegan2-ada's (:data:`ADA_WIDTH`) or tiny cases for tests. ``dataset``:
    a dataset path; None renders the shapes dataset's scenes at the case's resolution in memory.
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
    mapping_layers: Optional[int] = None
    dataset: Optional[str] = None
    augment: Optional[str] = None  # a discriminator augmentation pipeline (train.augment), at a fixed p of 1


# stylegan2-ada-pytorch's networks for datasets below 512 px (its 'auto' configuration, here with
# the 8 mapping layers of its other presets): the width of the side-by-side comparison.
ADA_WIDTH = dict(preset="auto", channel_base=16384, channel_max=512, latent_dim=512, mapping_layers=8)


@dataclasses.dataclass(frozen=True)
class TrainingResult:
    sec_per_kimg: float
    img_per_sec: float
    cycle_minibatches: int  # minibatches of one lazy-regularization cycle (16 for NVIDIA's schedule)
    warmup_minibatches: int
    cycle_seconds: Tuple[float, ...]  # wall time of each timed cycle
    cycle_steps: Tuple[Tuple[int, int], ...]  # G and D optimizer steps taken in each timed cycle


def training_config(case: TrainingCase, num_replicas: int = 1):
    """The case's preset resolved for its resolution and replicas, with its batch, widths and depth."""
    config = resolve(case.preset, case.resolution, num_replicas=num_replicas)
    widths = {"channel_base": case.channel_base, "channel_max": case.channel_max}
    widths = {k: v for k, v in widths.items() if v is not None}
    latents = {} if case.latent_dim is None else {"z_dim": case.latent_dim, "w_dim": case.latent_dim}
    mapping = {} if case.mapping_layers is None else {
        "mapping": dataclasses.replace(config.G.mapping, num_layers=case.mapping_layers)}
    G = dataclasses.replace(config.G, **widths, **latents, **mapping)
    D = dataclasses.replace(config.D, **widths)
    augment = {"augment_pipe": case.augment, "augment_p": 1.0} if case.augment else {}
    train = dataclasses.replace(config.train, batch_size=case.batch, **augment)
    return dataclasses.replace(config, G=G, D=D, train=train)


def synthetic_dataset(resolution: int, num_images: int):
    """The shapes dataset's first scenes rendered at ``resolution``, held in memory (any power of two)."""
    from tf_stylegan2.data.dataset import DatasetInfo, ImageDataset
    from tf_stylegan2.datasets import shapes

    images, _ = shapes.render_shapes(num_images, resolution)
    info = DatasetInfo(f"shapes{resolution}", f"memory:shapes{resolution}", num_images, resolution, 3, 0)
    return ImageDataset(info, np.zeros([num_images, 0], np.float32), cache=images)


def _case_dataset(case: TrainingCase):
    from tf_stylegan2.data import open_dataset

    if case.dataset is not None:
        dataset = open_dataset(case.dataset)
        if dataset.info.resolution != case.resolution:
            raise ValueError(f"dataset {case.dataset} is {dataset.info.resolution} px, the case {case.resolution} px")
        return dataset
    # At least two batches, at most 64 MiB of pixels: the training loop only ever holds a batch.
    count = max(2 * case.batch, min(256, (64 << 20) // (3 * case.resolution**2)))
    return synthetic_dataset(case.resolution, count)


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


class TrainingRun:
    """A training case set up as ``runners.train`` sets it up, as a context manager.

    The state and Trainer are built as the training loop builds them (MirroredStrategy over the
    GPUs, else the CPU; loss scaling for mixed_float16 only), fed by the training input pipeline.
    ``minibatch()`` runs one training iteration, its data included, as the loop counts sec/kimg;
    ``cycle()`` one lazy-regularization cycle (16 minibatches for NVIDIA's schedule: 16 Gmain and
    Dmain, 4 Greg, 1 Dreg).
    """

    def __init__(self, case: TrainingCase, strategy: Optional[tf.distribute.Strategy] = None):
        if case.jit and case.ops in COMPILED:
            raise ValueError(f"ops={case.ops} cannot run under XLA (jit): XLA cannot compile the compiled kernels")
        self.case, self._strategy = case, strategy
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> "TrainingRun":
        from tf_stylegan2.train.inputs import distributed_samples
        from tf_stylegan2.train.loop import make_strategy
        from tf_stylegan2.train.state import create_state
        from tf_stylegan2.train.step import Trainer

        case = self.case
        keras.backend.clear_session()
        strategy = self._strategy or make_strategy()
        replicas = strategy.num_replicas_in_sync
        if case.batch % replicas:
            raise ValueError(f"batch {case.batch} is not divisible by the {replicas} replicas")
        dataset = _case_dataset(case)
        self.config = config = training_config(case, replicas)
        loss_scaling = case.policy == "mixed_float16"
        self._stack.enter_context(_ops(case.ops))
        with strategy.scope():
            self.state = create_state(config, case.policy, 0, loss_scaling)
            self.trainer = Trainer(self.state, config.train, strategy, jit=case.jit, loss_scaling=loss_scaling)
        self.cycle_minibatches = math.lcm(*(phase.interval for phase in self.trainer.phases))
        self._batches = iter(distributed_samples(strategy, dataset, case.batch, use_labels=False, mirror=False,
                                                 seed=0, start_image=0, z_dim=config.G.z_dim))
        self.batch = None
        return self

    def __exit__(self, *exc) -> None:
        self._stack.close()

    def minibatch(self) -> None:
        self.batch = next(self._batches)
        stats = self.trainer.iteration(self.batch)
        for value in stats.values():  # wait for the step, as the training loop does
            float(value)

    def phase(self, name: str) -> None:
        """Phase ``name`` alone on the next batch, waited for."""
        self.batch = next(self._batches)
        for value in self.trainer.phase_function(name)(self.batch).values():
            float(value)

    def optimizer_steps(self) -> Tuple[int, int]:
        return int(self.state.G_opt.iterations.numpy()), int(self.state.D_opt.iterations.numpy())

    def cycle(self) -> None:
        for _ in range(self.cycle_minibatches):
            self.minibatch()

    def phase_flops(self) -> Dict[str, int]:
        """FLOPs of one call of each phase (all of its replicas), from its traced graph; every
        phase must have run once (minibatch 0 runs them all)."""
        return {phase.name: graph_flops(self.trainer.phase_function(phase.name).get_concrete_function(
            self.batch).graph) for phase in self.trainer.phases}

    def flops_per_image(self) -> float:
        """Training FLOPs per image: a cycle's phases over the cycle's images."""
        counts = {p.name: self.cycle_minibatches // p.interval for p in self.trainer.phases}
        flops = self.phase_flops()
        return sum(counts[name] * flops[name] for name in flops) / (self.cycle_minibatches * self.case.batch)

    def phase_seconds(self, repeats: int = 3) -> Dict[str, float]:
        """Each phase alone (its tf.function, waited for), and the data pipeline's ``next``: median
        seconds per call. The phases update the state as in training."""
        times: Dict[str, List[float]] = {"data": []}
        for _ in range(repeats):
            start = time.perf_counter()
            self.batch = next(self._batches)
            times["data"].append(time.perf_counter() - start)
            for phase in self.trainer.phases:
                start = time.perf_counter()
                for value in self.trainer.phase_function(phase.name)(self.batch).values():
                    float(value)
                times.setdefault(phase.name, []).append(time.perf_counter() - start)
        return {name: statistics.median(t) for name, t in times.items()}

    def phase_ops(self, name: str) -> Dict[str, float]:
        """:func:`op_seconds` of one call of phase ``name``."""
        fn = self.trainer.phase_function(name)
        return op_seconds(lambda: [float(v) for v in fn(self.batch).values()])


def training_speed(case: TrainingCase, iters: int = 3, strategy: Optional[tf.distribute.Strategy] = None
                   ) -> TrainingResult:
    """Training speed of one case: ``iters`` timed lazy-regularization cycles, median reported.

    Warm-up runs minibatches 0..C (C = one cycle), so that every phase has been traced and then
    called again; each timed cycle then holds every phase as often as its interval says. The data
    pipeline's ``next`` is timed with the step, as in the training loop's sec/kimg.
    """
    if iters < 1:
        raise ValueError(f"iters must be >= 1, got {iters}")
    with TrainingRun(case, strategy) as run:
        warmup = run.cycle_minibatches + 1
        for _ in range(warmup):
            run.minibatch()
        times, steps = [], []
        for _ in range(iters):
            before = run.optimizer_steps()
            start = time.perf_counter()
            run.cycle()
            times.append(time.perf_counter() - start)
            steps.append(tuple(now - then for now, then in zip(run.optimizer_steps(), before)))
        cycle = run.cycle_minibatches
    seconds = sorted(times)[len(times) // 2]
    sec_per_kimg = seconds / (cycle * case.batch) * 1000
    return TrainingResult(sec_per_kimg, 1000 / sec_per_kimg, cycle, warmup, tuple(times), tuple(steps))


def training_cases(resolutions: List[int], batches: Sequence[int], policies: List[str], jits: List[bool],
                   ops: List[str], preset: str = "small", augments: Sequence[Optional[str]] = (None,),
                   **overrides) -> List[TrainingCase]:
    """The grid of cases, without XLA with the compiled kernels (XLA cannot compile them).
    ``augments``: augmentation pipelines to compare (None: none). ``overrides``: TrainingCase
    fields for every case (e.g. :data:`ADA_WIDTH` without its preset).

    Bad input fails here, before anything runs: an unknown preset, ops implementation or
    augmentation pipeline, a bad resolution, ops 'custom' or 'cuda' without usable kernels.
    """
    from tf_stylegan2.train.augment import pipeline

    for impl in ops:
        _check_ops(impl)
    for name in augments:
        if name is not None:
            pipeline(name)
    for res in resolutions:
        resolve(preset, res)
    return [
        TrainingCase(res, batch, preset, keras_policy(policy), jit, impl, augment=augment, **overrides)
        for res in resolutions
        for batch in batches
        for policy in policies
        for jit in jits
        for impl in ops
        for augment in augments
        if not (jit and impl in COMPILED)
    ]


# ---- side by side: one process per side and configuration, rounds alternating ------------------

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PEER_DRIVER = os.path.join(_ROOT, "tf_stylegan2", "benchmark_peer.py")
PEER_NAME = "stylegan2-ada-pytorch"


def peer_spec(case, peer: str, warmup: Optional[int] = None, unit: str = "cycle") -> Dict:
    """What the peer driver needs to build NVIDIA's networks (and training schedule) equal to a
    case's: widths, depth, latent size, clamp, batch, and for training the loss and optimizer
    settings. float32 throughout (stylegan2-ada's ``--fp32``: no fp16 resolutions)."""
    if isinstance(case, GeneratorCase):
        G, work, extra = generator_config(case), "generator", {"warmup": 2}
    else:
        config = training_config(case)
        G, work, t = config.G, "training", config.train
        extra = dict(style_mixing_prob=t.style_mixing_prob, r1_gamma=t.r1_gamma, pl_batch_shrink=t.pl_batch_shrink,
                     pl_weight=t.pl_weight, g_reg_interval=t.g_reg_interval, d_reg_interval=t.d_reg_interval,
                     lr=t.g_lr, ema_kimg=t.ema_kimg, cycle=math.lcm(t.g_reg_interval, t.d_reg_interval),
                     warmup=warmup, unit=unit)
    return dict(work=work, peer=os.path.abspath(peer), resolution=case.resolution, batch=case.batch,
                channel_base=G.channel_base, channel_max=G.channel_max, latent_dim=G.z_dim,
                mapping_layers=G.mapping.num_layers, conv_clamp=G.conv_clamp, num_fp16_res=0, **extra)


def peer_problem(peer: Optional[str], python: str) -> Optional[str]:
    """Why the peer side cannot run (None: it can): no checkout given, not a checkout, no torch."""
    if not peer:
        return "no --peer checkout given"
    if not os.path.isfile(os.path.join(peer, "training", "networks.py")):
        return f"{peer} is not a stylegan2-ada-pytorch checkout (no training/networks.py)"
    try:
        r = subprocess.run([python, "-c", "import torch"], capture_output=True, text=True, timeout=300)
    except OSError as e:
        return f"cannot run {python}: {e}"
    if r.returncode:
        lines = r.stderr.strip().splitlines()
        return f"torch does not import in {python} ({lines[-1] if lines else 'exit status ' + str(r.returncode)})"
    return None


@dataclasses.dataclass(frozen=True)
class Side:
    """One worker process of a comparison: its label, the command that starts it, or why it is skipped."""

    label: str
    argv: Tuple[str, ...] = ()
    skipped: Optional[str] = None


def our_side(label: str, spec: Dict) -> Side:
    """Our worker (``runners.benchmark --worker``) for a spec of :func:`serve_worker`."""
    return Side(label, (sys.executable, "-m", "runners.benchmark", "--worker=" + json.dumps(spec)))


def peer_side(case, peer: Optional[str], python: str, problem: Optional[str], warmup: Optional[int] = None,
              unit: str = "cycle") -> Side:
    label = f"{PEER_NAME} float32"
    if problem:
        return Side(label, skipped=problem)
    return Side(label, (python, PEER_DRIVER, json.dumps(peer_spec(case, peer, warmup, unit))))


@dataclasses.dataclass
class SideResult:
    side: Side
    ready: Dict = dataclasses.field(default_factory=dict)  # what the worker said when set up
    seconds: List[float] = dataclasses.field(default_factory=list)  # one per round
    parts: List[Dict[str, float]] = dataclasses.field(default_factory=list)  # per round, a composed unit's
    peak_rss_mib: Optional[float] = None
    profile: Optional[Dict] = None
    error: Optional[str] = None

    @property
    def median(self) -> Optional[float]:
        return statistics.median(self.seconds) if self.seconds else None


class Worker:
    """A worker process speaking :mod:`tf_stylegan2.benchmark_peer`'s protocol; blocks until it is ready."""

    def __init__(self, argv: Sequence[str]):
        self._log = tempfile.TemporaryFile(mode="w+")
        self._proc = subprocess.Popen(list(argv), cwd=_ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=self._log, text=True, bufsize=1)
        self.ready = self._expect("ready")

    def _expect(self, event: str) -> Dict:
        from tf_stylegan2.benchmark_peer import PREFIX

        for line in self._proc.stdout:
            if line.startswith(PREFIX):
                message = json.loads(line[len(PREFIX):])
                if message["event"] != event:
                    raise RuntimeError(message.get("message", f"expected {event}, got {message['event']}"))
                return message
        status = self._proc.wait()
        self._log.seek(0)
        lines = [line.strip() for line in self._log.read().splitlines() if line.strip()]
        raise RuntimeError(f"exited with status {status}" + (f": {lines[-1]}" if lines else ""))

    def _send(self, command: str, event: str) -> Dict:
        self._proc.stdin.write(command + "\n")
        self._proc.stdin.flush()
        return self._expect(event)

    def round(self) -> Dict:
        """One timed unit: its ``seconds`` (and ``parts``, for a composed one)."""
        return self._send("round", "round")

    def profile(self) -> Dict:
        return self._send("profile", "profile")

    def close(self) -> float:
        """Ends the worker; its peak RSS in MiB."""
        peak = self._send("quit", "done")["peak_rss_mib"]
        self._proc.wait()
        self._log.close()
        return peak

    def kill(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._log.close()


def _record(result: SideResult, message: Dict) -> None:
    result.seconds.append(message["seconds"])
    if "parts" in message:
        result.parts.append(message["parts"])


def side_by_side(group: Sequence[Side], rounds: int, profile: bool = False,
                 log: Callable[[str], None] = lambda _: None) -> List[SideResult]:
    """Runs one configuration's sides: each started in a fresh process and set up in turn (never
    two warm-ups at once), then ``rounds`` timed units alternating over the sides, so that a
    change in the machine's load falls on every side alike; with ``profile`` one more unit each
    under its profiler. A side that fails is reported with its error; the others go on."""
    results = [SideResult(side, error=side.skipped) for side in group]
    workers: Dict[int, Worker] = {}

    def attempt(i: int, what: Callable[[], None]) -> None:
        try:
            what()
        except RuntimeError as e:
            results[i].error = f"{results[i].side.label}: {e}"
            log(f"  {results[i].error}")
            workers.pop(i).kill() if i in workers else None

    try:
        for i, side in enumerate(group):
            if side.skipped:
                continue
            log(f"  setting up {side.label}")

            def start(i=i, side=side):
                workers[i] = Worker(side.argv)
                results[i].ready = workers[i].ready

            attempt(i, start)
        for r in range(rounds):
            for i in list(workers):
                attempt(i, lambda i=i: _record(results[i], workers[i].round()))
                if i in workers:
                    log(f"  round {r + 1}/{rounds} {group[i].label}: {results[i].seconds[-1]:.1f} s")
        if profile:
            for i in list(workers):
                attempt(i, lambda i=i: setattr(results[i], "profile", workers[i].profile()))
        for i in list(workers):
            attempt(i, lambda i=i: setattr(results[i], "peak_rss_mib", workers.pop(i).close()))
    finally:
        for worker in workers.values():
            worker.kill()
    return results


# ---- our worker ---------------------------------------------------------------------------------


def matmul_spec(dtype: str, n: int = 2048, iters: int = 10) -> Dict:
    """What this machine's matrix units deliver: a unit of ``iters`` ``n x n`` matmuls in ``dtype``."""
    return {"work": "matmul", "dtype": dtype, "n": n, "iters": iters}


def generator_spec(case: GeneratorCase) -> Dict:
    return {"work": "generator", "case": dataclasses.asdict(case)}


def training_spec(case: TrainingCase, warmup: Optional[int] = None, unit: str = "cycle") -> Dict:
    """A training worker: ``warmup`` minibatches before the timed units (None: one cycle and one
    more, so that every phase has run twice; 1 traces and runs every phase once). ``unit``:
    'cycle' runs whole lazy-regularization cycles, 'phases' composes one from its timed parts
    (:func:`tf_stylegan2.benchmark_peer.composed_cycle`)."""
    return {"work": "training", "case": dataclasses.asdict(case), "warmup": warmup, "unit": unit}


def _top(seconds: Dict[str, float], count: int = 12) -> Dict[str, float]:
    return dict(list(seconds.items())[:count])


def serve_worker(spec: Dict) -> None:
    """Our side of :func:`side_by_side`: sets up the spec's work (``matmul``: ``iters`` n x n
    matmuls per unit; ``generator``: one batch through G; ``training``: one lazy-regularization
    cycle), warms it up, reports its FLOPs from the traced graphs and serves the rounds."""
    from tf_stylegan2 import benchmark_peer as protocol

    start = time.perf_counter()
    with contextlib.ExitStack() as stack:
        work, profile = spec["work"], None
        if work == "matmul":
            n, iters = spec["n"], spec["iters"]
            a = tf.cast(tf.random.normal([n, n]), spec["dtype"])
            fn = tf.function(lambda: tf.reduce_sum(tf.cast(tf.matmul(a, a)[:1, :1], tf.float32)))
            unit = step = lambda: [fn().numpy() for _ in range(iters)]
            count, info = 1, {"flops_per_unit": 2 * n**3 * iters}
        elif work == "generator":
            run = stack.enter_context(GeneratorRun(GeneratorCase(**spec["case"])))
            unit = step = run.call
            count, info = 2, {"images_per_unit": run.case.batch}
        elif work == "training":
            run = stack.enter_context(TrainingRun(TrainingCase(**spec["case"])))
            unit, step = run.cycle, run.minibatch
            if spec.get("unit") == "phases":
                intervals = {p.name: p.interval for p in run.trainer.phases if p.interval > 1}
                unit = lambda: protocol.composed_cycle(  # noqa: E731
                    lambda: int(run.state.batch_idx.numpy()), run.minibatch, run.phase, run.cycle_minibatches, intervals)
            count = spec.get("warmup") or run.cycle_minibatches + 1
            info = {"images_per_unit": run.cycle_minibatches * run.case.batch}

            def profile() -> Dict:
                return {"phase_seconds": run.phase_seconds(),
                        "phase_ops": {p.name: _top(run.phase_ops(p.name)) for p in run.trainer.phases}}
        else:
            raise ValueError(f"unknown work {work!r}")
        setup = time.perf_counter() - start
        info.update(setup_s=setup, **protocol.warm_up(step, count))
        if work == "generator":
            info["flops_per_image"] = run.flops_per_image()
        elif work == "training":
            info.update(flops_per_image=run.flops_per_image(), phase_flops=run.phase_flops())
        protocol.serve(unit, info, profile)
