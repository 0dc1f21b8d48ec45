"""Files of networks and training runs: the one loader every consumer uses, and the run directory.

A training run lives in one directory (``<outdir>/00000-<dataset>-<cfg>-b<batch>``, numbered as in
stylegan2-ada)::

    training_options.json       options, resolved networks/training config, dataset, replicas
    flags.txt                   the same options as a --flagfile for runners.train
    log.txt, stats.jsonl        progress lines; per-tick statistics (one JSON object per line)
    metric-<name>.jsonl         one line per evaluation
    events.out.tfevents.*       TensorBoard scalars and image grids
    reals.png, fakes000000000.png  training images; G_ema's images of fixed seeds per snapshot
    network-snapshot-000040000.keras   G_ema (float32) per snapshot (numbered by images shown):
                                what runners and exports load
    checkpoints/ckpt-000040000/ G, D, G_ema, optimizers, counters (tf.train.Checkpoint + manifest)
    checkpoints/latest          name of the newest complete checkpoint

Checkpoints are written whole under a temporary name and renamed into place, and ``latest`` is
replaced only after that, so a run killed at any moment leaves the previous checkpoint intact; a
SIGINT or SIGTERM during a checkpoint takes effect once it is complete. A write that fails (full
disk, read-only, permissions) raises a one-line ``WriteError`` and leaves the previous checkpoint
as it was.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import re
import shutil
import tempfile
import zipfile
from typing import Any, Dict, List, Optional, Sequence

import keras
import numpy as np
import tensorflow as tf

from tf_stylegan2.config import StyleGAN2Config
from tf_stylegan2.fileio import (UserError, WriteError, as_os_error, atomic_path, remove_partial, uninterrupted,
                                 write_error, write_text)
from tf_stylegan2.networks import Discriminator, Generator

RUN_OPTIONS = "training_options.json"
CHECKPOINTS = "checkpoints"
LATEST = "latest"
SNAPSHOT_PATTERN = "network-snapshot-*.keras"
_PREFIX = "ckpt"  # tf.train.Checkpoint file prefix inside a checkpoint directory
_MANIFEST = "manifest.json"


# ---- networks ---------------------------------------------------------------------------------


def _load_keras(path: str, cls: type):
    if not zipfile.is_zipfile(path):
        raise UserError(f"{path} is not a .keras file (not a zip archive)")
    try:
        model = keras.models.load_model(path, compile=False)
    except Exception as e:  # Keras raises many types for foreign or damaged archives
        raise UserError(f"cannot load {path}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from e
    if not isinstance(model, cls):
        raise UserError(f"{path} holds a {type(model).__name__}, not a {cls.__name__}")
    return model


def load_generator(path: str) -> Generator:
    """A Generator from a ``.keras`` file, a training run directory (its newest snapshot's G_ema),
    a training checkpoint directory (its G_ema) or an official NVIDIA network pickle (its G_ema /
    Gs, read without running code from it: tf_stylegan2.official)."""
    if not os.path.exists(path):
        raise UserError(f"no such file or directory: {path}")
    if os.path.isfile(path):
        if not zipfile.is_zipfile(path) and _is_pickle(path):
            from tf_stylegan2 import official  # imports the official layouts only when needed

            return official.read(path).networks["G_ema"].build()
        return _load_keras(path, Generator)
    if os.path.exists(os.path.join(path, _PREFIX + ".index")):
        return _generator_from_checkpoint(path)
    if os.path.exists(os.path.join(path, RUN_OPTIONS)):
        return _load_keras(newest_snapshot(path), Generator)
    raise UserError(f"{path} is neither a .keras file, a training run nor a training checkpoint")


def newest_snapshot(run_dir: str) -> str:
    """The newest ``network-snapshot-*.keras`` of a training run."""
    snapshots = sorted(glob.glob(os.path.join(run_dir, SNAPSHOT_PATTERN)))
    if not snapshots:
        raise UserError(f"training run {run_dir} has no network snapshot yet")
    return snapshots[-1]


def run_dir_of(path: str) -> Optional[str]:
    """The training run a network path belongs to (the run directory itself, a file in it, or one
    of its checkpoints), or None."""
    path = os.path.abspath(path)
    for candidate in (path, os.path.dirname(path), os.path.dirname(os.path.dirname(path))):
        if os.path.isfile(os.path.join(candidate, RUN_OPTIONS)):
            return candidate
    return None


def _is_pickle(path: str) -> bool:
    with open(path, "rb") as f:
        return f.read(1) == b"\x80"  # the PROTO opcode every pickle of protocol >= 2 starts with


def load_discriminator(path: str) -> Discriminator:
    """A Discriminator from a ``.keras`` file."""
    if not os.path.isfile(path):
        raise UserError(f"no such file: {path}")
    return _load_keras(path, Discriminator)


def _generator_from_checkpoint(path: str) -> Generator:
    run_dir = os.path.dirname(os.path.dirname(os.path.abspath(path)))
    config = StyleGAN2Config.from_dict(read_run_options(run_dir)["config"])
    G = Generator(config.G, name="G_ema")
    restore({"G_ema": G.weights}, path)
    return G


# ---- run directories --------------------------------------------------------------------------


_RUN_ID = re.compile(r"(\d+)(?:-|$)")
_MAX_CLAIMS = 1000


def _run_ids(outdir: str) -> list:
    return [int(m.group(1)) for m in (_RUN_ID.match(name) for name in os.listdir(outdir)) if m]


def new_run_dir(outdir: str, desc: str) -> str:
    """Creates ``<outdir>/<next id>-<desc>``: ids count up from the highest present, as in stylegan2-ada.

    Runs started at the same moment get distinct ids: a process claims an id by creating the
    directory ``<outdir>/<id>`` (which fails if another process holds that claim), keeps it only if
    no finished run directory has the id meanwhile, and renames it to ``<id>-<desc>``; otherwise it
    tries the next id.
    """
    if os.path.exists(outdir) and not os.path.isdir(outdir):
        raise WriteError(f"cannot create a run directory in {outdir}: {outdir} is a file, not a directory")
    try:
        os.makedirs(outdir, exist_ok=True)
        for _ in range(_MAX_CLAIMS):
            run_id = max(_run_ids(outdir), default=-1) + 1
            claim = os.path.join(outdir, f"{run_id:05d}")
            try:
                os.mkdir(claim)
            except FileExistsError:
                continue
            if _run_ids(outdir).count(run_id) == 1:
                run_dir = os.path.join(outdir, f"{run_id:05d}-{desc}")
                os.rename(claim, run_dir)
                return run_dir
            os.rmdir(claim)
    except OSError as e:
        raise write_error(outdir, e) from None
    raise WriteError(f"cannot create a run directory in {outdir}: {_MAX_CLAIMS} ids in a row were taken meanwhile")


def remove_partial_files(run_dir: str) -> list:
    """Removes what writes cut short by SIGKILL or a power loss left in a run directory and its
    checkpoints (hidden temporaries of atomic writes); returns their paths."""
    return [os.path.join(d, name) for d in (run_dir, os.path.join(run_dir, CHECKPOINTS)) for name in remove_partial(d)]


def read_run_options(run_dir: str) -> Dict[str, Any]:
    path = os.path.join(run_dir, RUN_OPTIONS)
    if not os.path.isfile(path):
        raise UserError(f"{run_dir} is not a training run (no {RUN_OPTIONS})")
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise UserError(f"{path}: unreadable ({e})") from None


def write_run_options(run_dir: str, options: Dict[str, Any]) -> None:
    try:
        write_text(os.path.join(run_dir, RUN_OPTIONS), json.dumps(options, indent=2, sort_keys=True) + "\n")
    except BaseException:
        with contextlib.suppress(OSError):
            os.rmdir(run_dir)  # a new run directory that could not even hold its options is removed again
        raise


def snapshot_suffix(cur_nimg: int) -> str:
    """How files of a snapshot are numbered: images shown, 9 digits (sorts by time; ticks may be
    fractions of a kimg on small runs)."""
    return f"{cur_nimg:09d}"


def _manifest(groups: Dict[str, Sequence]) -> Dict[str, list]:
    def entry(v) -> list:
        return [getattr(v, "path", v.name), list(v.shape)]  # Keras variables have a path, tf.Variables a name

    return {name: [entry(v) for v in variables] for name, variables in groups.items()}


def _tf_checkpoint(groups: Dict[str, Sequence]) -> tf.train.Checkpoint:
    # Plain ordered lists, not the models themselves: tf.train.Checkpoint does not see the layers
    # Keras 3 keeps in lists, so it would silently skip most of a network.
    return tf.train.Checkpoint(**{name: list(variables) for name, variables in groups.items()})


def save(groups: Dict[str, Sequence], run_dir: str, name: str, keep: int = 3, is_chief: bool = True) -> str:
    """Writes ``checkpoints/<name>/`` atomically, then points ``latest`` at it; keeps it and the
    ``keep - 1`` checkpoints before it (names sort by images shown).

    ``groups`` are named ordered lists of variables (e.g. ``TrainState.variables()``); a manifest
    of their paths and shapes is written beside the values, so that a restore can tell another
    configuration's checkpoint from its own before reading a value. Other workers of a multi-worker
    run write too (variables may need their collective reads) but into a temporary directory that
    is removed at once.
    """
    checkpoint = _tf_checkpoint(groups)
    with uninterrupted():  # SIGINT / SIGTERM: the checkpoint is finished first
        if not is_chief:
            tmp = tempfile.mkdtemp(prefix="ckpt-worker-")
            try:
                checkpoint.write(os.path.join(tmp, _PREFIX))
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            return ""
        root = os.path.join(run_dir, CHECKPOINTS)
        path = os.path.join(root, name)
        needed = sum(int(np.prod(v.shape)) * tf.as_dtype(v.dtype).size for vs in groups.values() for v in vs)
        with atomic_path(path, needed=needed) as tmp:
            os.makedirs(tmp)
            try:
                checkpoint.write(os.path.join(tmp, _PREFIX))
            except tf.errors.OpError as e:
                raise as_os_error(e, tmp) from None
            with open(os.path.join(tmp, _MANIFEST), "w", encoding="utf-8") as f:
                json.dump(_manifest(groups), f)
        write_text(os.path.join(root, LATEST), name + "\n")
        # Only checkpoints before this one are pruned: a run resumed from an older checkpoint leaves
        # the later ones of its first attempt alone.
        older = sorted(n for n in os.listdir(root) if n.startswith("ckpt-") and n < name)
        for old in older[: max(len(older) - (keep - 1), 0)]:
            shutil.rmtree(os.path.join(root, old), ignore_errors=True)
        return path


def latest(run_dir: str) -> Optional[str]:
    """The newest complete checkpoint directory of a run, or None before the first one."""
    pointer = os.path.join(run_dir, CHECKPOINTS, LATEST)
    if not os.path.isfile(pointer):
        return None
    with open(pointer, encoding="utf-8") as f:
        path = os.path.join(run_dir, CHECKPOINTS, f.read().strip())
    if not os.path.exists(os.path.join(path, _PREFIX + ".index")):
        raise UserError(f"{pointer} names {path}, which is not a complete checkpoint")
    return path


def restore(groups: Dict[str, Sequence], path: str, optional: Sequence[str] = ()) -> List[str]:
    """Restores the named groups of variables from a checkpoint directory (it may hold more groups).

    A UserError, before any variable changes, if the checkpoint's manifest lists other variables
    for a group: a checkpoint of another configuration is refused, not half-loaded. Groups named in
    ``optional`` that the checkpoint lacks (state added after it was written) keep their values;
    their names are returned.
    """
    manifest_path = os.path.join(path, _MANIFEST)
    try:
        with open(manifest_path, encoding="utf-8") as f:
            stored = json.load(f)
    except (OSError, ValueError) as e:
        raise UserError(f"{path} is not a readable training checkpoint ({e})") from None
    absent = [name for name in optional if name in groups and name not in stored]
    groups = {name: variables for name, variables in groups.items() if name not in absent}
    expected = _manifest(groups)
    for name, variables in expected.items():
        have = stored.get(name)
        if have is None:
            raise UserError(f"checkpoint {path} holds no {name}")
        if have != variables:
            first = next((i for i, (a, b) in enumerate(zip(have, variables)) if a != b), min(len(have), len(variables)))
            detail = (f"variable {first} is {have[first][0]} {have[first][1]} there, {variables[first][0]} "
                      f"{variables[first][1]} here" if first < min(len(have), len(variables))
                      else f"{len(have)} variables there, {len(variables)} here")
            raise UserError(f"checkpoint {path} holds another configuration's {name}: {detail}")
    try:
        _tf_checkpoint(groups).read(os.path.join(path, _PREFIX)).expect_partial().assert_existing_objects_matched()
    except (AssertionError, ValueError, tf.errors.OpError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"cannot read checkpoint {path}: {first[:300]}") from None
    return absent
