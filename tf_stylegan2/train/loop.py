"""The training loop: strategy, data, networks and state built once, then minibatches, ticks and
snapshots, as in stylegan2-ada-pytorch's ``training_loop``.

A *tick* ends every ``--tick`` kimg (and after the first minibatch): it prints a progress line and
writes the tick's mean statistics to ``stats.jsonl`` and TensorBoard. Every ``--snap`` ticks (and at
the first and the last) a *snapshot* writes the checkpoint, G_ema as ``.keras``, a PNG grid of
fixed seeds and the metrics. Nothing below this module reads flags; runners/train.py is a shell.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import platform
import resource
import time
from typing import Any, Callable, Dict, Optional, Tuple

import numpy as np
import tensorflow as tf

from tf_stylegan2 import checkpoint
from tf_stylegan2.config import DiscriminatorConfig, GeneratorConfig, StyleGAN2Config
from tf_stylegan2.data import ImageDataset, dataset_grid, grid_indices, open_dataset
from tf_stylegan2.fileio import (Interrupted, UserError, WriteError, append_line, atomic_path, error_number, write_error,
                                 write_text)
from tf_stylegan2.images import grid, save_png
from tf_stylegan2.metrics.suite import MetricSuite, report_metric
from tf_stylegan2.networks import float32_generator
from tf_stylegan2.precision import policy_name
from tf_stylegan2.progress import format_duration
from tf_stylegan2.sampling import render, z_from_seeds
from tf_stylegan2.train.inputs import distributed_samples
from tf_stylegan2.train import transfer
from tf_stylegan2.train.options import TrainOptions, merge_for_resume, resolve_config, run_description
from tf_stylegan2.train.state import AUGMENT_GROUP, TrainState, create_state, set_learning_rates
from tf_stylegan2.train.step import Trainer

GRID_COLS, GRID_ROWS = 8, 8
PRETRAINED = "pretrained"  # training_options.json: the networks a fine-tuning run started from


class TrainingDiverged(UserError):
    """A loss or a weight became NaN or Inf: the run stops without writing a checkpoint."""


def make_strategy() -> tf.distribute.Strategy:
    """MultiWorkerMirroredStrategy when TF_CONFIG names several tasks, else MirroredStrategy over
    every visible GPU (the CPU when there is none)."""
    cluster = json.loads(os.environ.get("TF_CONFIG", "{}")).get("cluster", {})
    if sum(len(tasks) for tasks in cluster.values()) > 1:
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_logical_devices("GPU")
    return tf.distribute.MirroredStrategy([d.name for d in gpus] if gpus else ["/cpu:0"])


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """The worker that writes files: the only one, the 'chief' task, or worker 0 without a chief."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    if resolver.task_type == "chief":
        return True
    return resolver.task_type == "worker" and resolver.task_id == 0 and "chief" not in resolver.cluster_spec().as_dict()


@dataclasses.dataclass
class Run:
    """Everything set up for training; :func:`train` runs it."""

    options: TrainOptions
    config: StyleGAN2Config
    dataset: ImageDataset
    strategy: tf.distribute.Strategy
    state: TrainState
    trainer: Trainer
    run_dir: Optional[str]  # None on workers that write nothing
    is_chief: bool
    resumed_from: Optional[str]
    metrics: MetricSuite
    log: Callable[[str], None]


def _resume_point(path: str) -> Tuple[str, Optional[str]]:
    """(run directory, checkpoint) for ``--resume``: a run directory resumes from its latest
    checkpoint, a checkpoint directory of a run from that checkpoint."""
    path = os.path.abspath(path)
    if os.path.basename(os.path.dirname(path)) == checkpoint.CHECKPOINTS:
        if not os.path.isdir(path):
            raise UserError(f"no such checkpoint: {path}")
        return os.path.dirname(os.path.dirname(path)), path
    if not os.path.isdir(path):
        raise UserError(f"--resume={path}: no such run directory or network file")
    return path, checkpoint.latest(path)


def _config_differences(stored: Dict[str, Any], new: Dict[str, Any], prefix: str = "") -> list:
    out = []
    for key in sorted(set(stored) | set(new)):
        a, b = stored.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _config_differences(a, b, f"{prefix}{key}.")
        elif a != b and not (isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)) and list(a) == list(b)):
            out.append(f"{prefix}{key} {a} -> {b}")
    return out


def setup(
    options: TrainOptions,
    *,
    resume: Optional[str] = None,
    resume_d: Optional[str] = None,
    given: Optional[Dict[str, Any]] = None,
    strategy: Optional[tf.distribute.Strategy] = None,
    log: Callable[[str], None] = print,
) -> Run:
    """Builds a new run from ``options``, or resumes the run at ``resume`` (its directory or one of
    its checkpoints) with the explicitly ``given`` options changed (see ``merge_for_resume``), or,
    when ``resume`` is a file, builds a new run that fine-tunes the pretrained networks in it
    (``train.transfer``; ``resume_d``: the discriminator that goes with a generator .keras file).

    Every check of the user's input happens here, before anything is written.
    """
    strategy = strategy or make_strategy()
    replicas = strategy.num_replicas_in_sync
    chief = is_chief(strategy)
    run_dir, resumed_from, stored, pretrained = None, None, None, None
    if resume and transfer.is_pretrained(resume):
        pretrained = transfer.read(resume, resume_d)
    elif resume_d:
        raise UserError("--resume_d needs --resume=<generator .keras file>")
    elif resume:
        run_dir, resumed_from = _resume_point(resume)
        stored = checkpoint.read_run_options(run_dir)
        options = merge_for_resume(TrainOptions.from_dict(stored["options"]), given or {})
        if resumed_from is None:
            raise UserError(f"training run {run_dir} has no checkpoint to resume from yet")
    dataset = open_dataset(options.data)
    networks, started_from = None, (stored or {}).get(PRETRAINED)
    if pretrained is not None:
        transfer.check_fits(pretrained, dataset.info, options.cond)
        networks, started_from = pretrained.configs, {"path": pretrained.path, **pretrained.record()}
    elif started_from is not None:  # a fine-tuning run continues with its source's architecture
        networks = (GeneratorConfig.from_dict(stored["config"]["G"]),
                    DiscriminatorConfig.from_dict(stored["config"]["D"]))
    config = resolve_config(options, dataset.info, replicas, networks)
    if stored is not None:
        new = {"G": config.G.to_dict(), "D": config.D.to_dict()}
        diff = _config_differences({k: stored["config"][k] for k in ("G", "D")}, new)
        if diff:
            raise UserError(f"cannot resume {run_dir}: these options build other networks than its checkpoint "
                            f"({'; '.join(diff[:3])})")
    policy = policy_name(options.precision)
    # Only the chief evaluates (and writes) metrics. The weights files are read now, so a missing or
    # wrong one fails before the run directory exists.
    metrics = MetricSuite(options.metrics if chief else (), dataset, inception=options.inception, vgg16=options.vgg16,
                          lpips=options.lpips, mirror=options.mirror, cache_dir=options.metrics_cache or None,
                          strategy=strategy if isinstance(strategy, tf.distribute.MirroredStrategy) else None)

    with strategy.scope():
        state = create_state(config, policy, options.seed, loss_scaling=policy == "mixed_float16")
        trainer = Trainer(state, config.train, strategy, jit=options.jit, loss_scaling=policy == "mixed_float16")
    notes = []
    if resumed_from:
        if checkpoint.restore(state.variables(), resumed_from, optional=[AUGMENT_GROUP]):
            notes.append(f"its checkpoint holds no augmentation state: p starts at {config.train.augment_p:g}")
        set_learning_rates(state, config.train)
    if pretrained is not None:
        transfer.copy_into(state, pretrained)

    if chief and run_dir is None:
        desc = run_description(options, dataset.info, config, pretrained.path if pretrained else None)
        run_dir = checkpoint.new_run_dir(options.outdir, desc)
    if chief:
        checkpoint.write_run_options(run_dir, {
            "options": options.to_dict(), "config": config.to_dict(), "dataset": dataclasses.asdict(dataset.info),
            "num_replicas": replicas, "policy": policy, "tensorflow": tf.__version__,
            **({PRETRAINED: started_from} if started_from else {}),
        })
        write_text(os.path.join(run_dir, "flags.txt"), options.to_flagfile())
        log = _tee(log, os.path.join(run_dir, "log.txt"))
    if pretrained is not None:
        notes.append(f"fine-tuning {pretrained.path} ({pretrained.format})")
    log(f"{'Resuming ' + run_dir + ' from ' + resumed_from if resumed_from else 'Training in ' + str(run_dir)}: "
        f"{dataset.info.name} {dataset.info.resolution}px, {len(dataset)} images, cfg {options.cfg}, batch "
        f"{config.train.batch_size} on {replicas} replica(s), {policy}{', XLA' if options.jit else ''}; "
        f"G {_count(state.G)} / D {_count(state.D)} parameters; TensorFlow {tf.__version__} on {platform.machine()}"
        f"{_augmentation_note(config.train)}{''.join('; ' + n for n in notes)}")
    return Run(options, config, dataset, strategy, state, trainer, run_dir, chief, resumed_from, metrics, log)


def _augmentation_note(t) -> str:
    frozen = f"; Freeze-D {t.freeze_layers} layers" if t.freeze_layers else ""
    if t.augment_pipe is None:
        return "; no augmentation" + frozen
    how = f"ADA (target {t.ada_target:g}, {t.ada_kimg:g} kimg per unit)" if t.ada_target is not None else "fixed"
    return f"; augmentation {t.augment_pipe}, p {t.augment_p:g}, {how}{frozen}"


def _count(model) -> str:
    return f"{sum(int(np.prod(v.shape)) for v in model.trainable_variables):,}"


def _tee(log: Callable[[str], None], path: str) -> Callable[[str], None]:
    def both(line: str) -> None:
        log(line)
        append_line(path, line)

    return both


def _truncate_jsonl(path: str, cur_nimg: int) -> None:
    """Drops the lines of a resumed run's log written after its checkpoint (they are redone), and
    a line torn by a kill in the middle of its write."""
    if not os.path.exists(path):
        return
    with open(path, encoding="utf-8", errors="replace") as f:
        records = [(line, _json_or_none(line)) for line in f]
    write_text(path, "".join(line for line, r in records if r is not None and r.get("cur_nimg", 0) <= cur_nimg))


def _json_or_none(line: str) -> Optional[Dict[str, Any]]:
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def _append_jsonl(path: str, record: Dict[str, Any]) -> None:
    append_line(path, json.dumps(record, sort_keys=True))


def _memory() -> Dict[str, float]:
    out = {"Resources/peak_cpu_mem_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}
    if tf.config.list_physical_devices("GPU"):
        out["Resources/peak_gpu_mem_gb"] = tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**30
    return out


def _all_finite(state: TrainState) -> bool:
    return all(bool(np.all(np.isfinite(v.numpy()))) for m in (state.G, state.D, state.G_ema) for v in m.weights)


class _SampleGrid:
    """The fixed fakes of every snapshot: seeds 0..63, labelled as the cells of the dataset's
    preview grid (reals.png), so that both grids compare cell by cell."""

    def __init__(self, dataset: ImageDataset, G):
        self.indices = grid_indices(dataset, GRID_COLS, GRID_ROWS)
        self.z = z_from_seeds(range(len(self.indices)), G.z_dim)
        self.c = None
        if G.c_dim:
            rows = np.arange(len(self.indices)) // GRID_COLS  # a blank cell takes its row's class
            self.c = np.where((self.indices >= 0)[:, None], dataset.labels[np.maximum(self.indices, 0)],
                              np.eye(G.c_dim, dtype=np.float32)[rows % G.c_dim])

    def fakes(self, G) -> np.ndarray:
        return grid(render(G, self.z, self.c, noise_mode="const"), cols=GRID_COLS)


def _reports_stops(train_fn: Callable[[Run], Dict[str, float]]) -> Callable[[Run], Dict[str, float]]:
    """Around :func:`train`: removes what a killed earlier attempt left half-written, and ends a
    run stopped by SIGINT / SIGTERM, a failed write or a corrupt image read while streaming with
    one line that says where the run stands."""

    @functools.wraps(train_fn)
    def wrapped(run: Run) -> Dict[str, float]:
        if run.is_chief:
            checkpoint.remove_partial_files(run.run_dir)
        try:
            return train_fn(run)
        except Interrupted as e:
            kimg = int(run.state.cur_nimg.numpy()) / 1000
            raise Interrupted(e.signum, f"interrupted by {e.signal_name} at kimg {kimg:g}; {_standing(run)}") from None
        except WriteError as e:
            raise WriteError(f"{e}; {_standing(run)}") from None
        except tf.errors.OpError as e:
            if run.dataset.stream_error is not None:
                raise run.dataset.stream_error from None
            if error_number(e) is None or not run.run_dir:
                raise
            # Summary ops write the TensorBoard events file (checkpoints report their own failures).
            failure = write_error(run.run_dir, e, what=f"TensorBoard events in {run.run_dir}")
            raise WriteError(f"{failure}; {_standing(run)}") from None

    return wrapped


def _standing(run: Run) -> str:
    last = checkpoint.latest(run.run_dir) if run.run_dir else None
    if last is None:
        return "no checkpoint was written yet"
    return f"resume with --resume={run.run_dir} (from {os.path.basename(last)})"


@_reports_stops
def train(run: Run) -> Dict[str, float]:
    """Trains until ``total_kimg``; returns the last tick's statistics."""
    opts, config, state, log = run.options, run.config, run.state, run.log
    chief, run_dir = run.is_chief, run.run_dir
    batch = config.train.batch_size
    start_nimg = int(state.cur_nimg.numpy())
    total_nimg = int(round(config.train.total_kimg * 1000))
    samples = distributed_samples(
        run.strategy, run.dataset, batch, use_labels=opts.cond, mirror=opts.mirror, seed=opts.seed,
        start_image=start_nimg, z_dim=config.G.z_dim,
    )
    iterator = iter(samples)
    sample_grid = _SampleGrid(run.dataset, state.G)
    writer = tf.summary.create_file_writer(run_dir) if chief else tf.summary.create_noop_writer()
    if chief:
        for name in ["stats.jsonl"] + [f"metric-{m}.jsonl" for m in opts.metrics]:
            _truncate_jsonl(os.path.join(run_dir, name), start_nimg)
        if not run.resumed_from:
            save_png(os.path.join(run_dir, "reals.png"), dataset_grid(run.dataset, GRID_COLS, GRID_ROWS))

    cur_nimg, cur_tick = start_nimg, 0
    tick_start_nimg, tick_start_time, start_time = cur_nimg, time.time(), time.time()
    sums: Dict[str, float] = {}
    counts: Dict[str, int] = {}
    record: Dict[str, float] = {}
    done = cur_nimg >= total_nimg
    while not done:
        batch_data = next(iterator)
        stats = {k: float(v) for k, v in run.trainer.iteration(batch_data).items()}
        bad = [k for k, v in stats.items() if not math.isfinite(v)]
        if bad:
            _diverged(run, f"{bad[0]} is {stats[bad[0]]} (NaN or Inf)", cur_nimg)
        for k, v in stats.items():
            sums[k] = sums.get(k, 0.0) + v
            counts[k] = counts.get(k, 0) + 1
        cur_nimg += batch
        done = cur_nimg >= total_nimg
        if not done and cur_tick != 0 and cur_nimg < tick_start_nimg + opts.tick * 1000:
            continue

        # Tick: progress line and statistics.
        now = time.time()
        tick_images = cur_nimg - tick_start_nimg
        sec_per_kimg = (now - tick_start_time) / tick_images * 1000
        # Tick 0 (one minibatch) includes tracing every phase: its rate says nothing about the rest.
        eta = None if cur_tick == 0 else max(total_nimg - cur_nimg, 0) * sec_per_kimg / 1000
        record = {k: sums[k] / counts[k] for k in sums}
        record.update({
            "Progress/kimg": cur_nimg / 1000, "Progress/tick": cur_tick, "Timing/sec_per_kimg": sec_per_kimg,
            "Timing/img_per_sec": 1000 / sec_per_kimg, "Timing/total_hours": (now - start_time) / 3600,
            "Progress/G_lr": _lr(state.G_opt), "Progress/D_lr": _lr(state.D_opt),
            **_memory(),
        })
        if state.augment is not None:
            record["Progress/augment"] = float(state.augment.p.numpy())  # stylegan2-ada's name for p
        log(_progress_line(cur_tick, cur_nimg, now - start_time, sec_per_kimg, eta, record))
        if done or cur_tick % opts.snap == 0:
            record.update(_snapshot(run, sample_grid, writer, cur_nimg, batch_data))  # Metrics/<result>
        if chief:
            _append_jsonl(os.path.join(run_dir, "stats.jsonl"), {"cur_nimg": cur_nimg, "timestamp": now, **record})
            with writer.as_default():
                for k, v in record.items():
                    tf.summary.scalar(k, v, step=cur_nimg)
        sums, counts = {}, {}
        cur_tick += 1
        tick_start_nimg, tick_start_time = cur_nimg, time.time()  # snapshot time is not training time
    writer.flush()
    log(f"Done: {cur_nimg / 1000:.1f} kimg in {run.run_dir}")
    return record


def _lr(opt) -> float:
    return float(opt.learning_rate.numpy() if hasattr(opt.learning_rate, "numpy") else opt.learning_rate)


def _progress_line(tick: int, cur_nimg: int, elapsed: float, sec_per_kimg: float, eta: Optional[float],
                   record: Dict[str, float]) -> str:
    losses = [("G", "Loss/G/loss"), ("D", "Loss/D/loss"), ("pl", "Loss/pl_length"), ("r1", "Loss/r1_penalty"),
              ("augment", "Progress/augment"), ("rt", "Loss/signs/real")]
    parts = [
        f"tick {tick:<4d}", f"kimg {cur_nimg / 1000:<8.1f}", f"time {format_duration(elapsed):<8s}",
        f"sec/kimg {sec_per_kimg:<8.2f}", f"img/s {1000 / sec_per_kimg:<7.1f}", f"ETA {'-' if eta is None else format_duration(eta):<8s}",
        f"cpumem {record['Resources/peak_cpu_mem_gb']:.2f}GB",
    ]
    parts += [f"{name} {record[key]:.3f}" for name, key in losses if key in record]
    return "  ".join(parts)


def _diverged(run: Run, what: str, cur_nimg: int) -> None:
    last = checkpoint.latest(run.run_dir) if run.run_dir else None
    raise TrainingDiverged(
        f"{what} at kimg {cur_nimg / 1000:.1f}: training stopped without writing a checkpoint; "
        + (f"the last good one is {last} (--resume={run.run_dir} after lowering --glr/--dlr or raising --gamma)"
           if last else "no checkpoint had been written yet")
    )


def _snapshot(run: Run, sample_grid: _SampleGrid, writer, cur_nimg: int, batch) -> Dict[str, float]:
    """Checkpoint, G_ema .keras, PNG grid and metrics; returns ``{"Metrics/<result>": value}``."""
    state, log = run.state, run.log
    if not _all_finite(state):
        _diverged(run, "a network weight is NaN or Inf", cur_nimg)
    if not run.trainer.outputs_finite(batch):
        _diverged(run, "the networks' outputs overflow to NaN or Inf", cur_nimg)
    suffix = checkpoint.snapshot_suffix(cur_nimg)
    checkpoint.save(state.variables(), run.run_dir, f"ckpt-{suffix}", keep=run.options.keep, is_chief=run.is_chief)
    if not run.is_chief:
        return {}
    G_ema = float32_generator(state.G_ema)
    network = os.path.join(run.run_dir, f"network-snapshot-{suffix}.keras")
    with atomic_path(network) as tmp:
        G_ema.save(tmp)
    fakes = sample_grid.fakes(G_ema)
    save_png(os.path.join(run.run_dir, f"fakes{suffix}.png"), fakes)
    with writer.as_default():
        tf.summary.image("fakes", fakes[np.newaxis], step=cur_nimg)
    results = {}
    for record in run.metrics(G_ema):  # stylegan2-ada's records, one line each in metric-<name>.jsonl
        report_metric(record, run.run_dir, network, cur_nimg=cur_nimg)
        results.update(record["results"])
    summary = "  ".join(f"{k} {v:.4g}" for k, v in results.items())
    log(f"snapshot {os.path.basename(network)}{'  ' + summary if summary else ''}")
    return {f"Metrics/{k}": v for k, v in results.items()}
