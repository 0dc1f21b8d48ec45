"""Training runs' logs as curves over kimg, and the chart that compares runs (runners/plot_training.py).

From each run directory: r_t (``Loss/signs/real``, D's mean sign on real images, stylegan2-ada's
overfitting heuristic) and p (``Progress/augment``) from ``stats.jsonl``; every metric from its
``metric-<name>.jsonl``; optionally D's mean logit on training minus held-out real images per
checkpoint (:mod:`.held_out`). The charts are :mod:`tf_stylegan2.charts`'; runners/plot_metrics.py
draws one run's metrics with reference lines (:func:`metric_panels`, :func:`metric_table`).
"""

from __future__ import annotations

import glob
import json
import os
import re
from typing import Dict, List, Optional, Sequence, Tuple

from tf_stylegan2 import checkpoint
from tf_stylegan2.charts import BLUE, GREEN, RED, Panel, Series
from tf_stylegan2.data import ImageDataset, open_dataset
from tf_stylegan2.fileio import UserError
from tf_stylegan2.train import held_out

Curve = Tuple[List[float], List[float]]  # kimg, values
RT, P, GAP = "r_t = E[sign(D(real))]", "augmentation probability p", "D(train) - D(held-out), mean logits"
COLOURS = (RED, BLUE, GREEN)


def read_jsonl(path: str) -> List[dict]:
    if not os.path.isfile(path):
        return []
    try:
        with open(path, encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]
    except (OSError, ValueError) as e:
        raise UserError(f"{path}: unreadable ({e})") from None


def _record_nimg(record: dict) -> Optional[int]:
    """The images a metric record was taken at: its ``cur_nimg``, else its snapshot's number."""
    if record.get("cur_nimg") is not None:
        return int(record["cur_nimg"])
    digits = re.findall(r"(\d+)\.\w+$", str(record.get("snapshot_pkl") or record.get("snapshot") or ""))
    return int(digits[0]) if digits else None


def metric_curves(run_dir: str) -> Dict[str, Curve]:
    """Every result of the run's ``metric-<name>.jsonl`` files in kimg order (one per name, or
    several, e.g. pr50k3's precision and recall; records as stylegan2-ada writes them, ``results``,
    or as this trainer wrote them before, ``value``). A snapshot evaluated twice keeps its last value."""
    points: Dict[str, Dict[int, float]] = {}
    for path in sorted(glob.glob(os.path.join(run_dir, "metric-*.jsonl"))):
        name = os.path.basename(path)[len("metric-"):-len(".jsonl")]
        for record in read_jsonl(path):
            nimg = _record_nimg(record)
            results = record.get("results") or ({name: record["value"]} if "value" in record else {})
            for result, value in results.items():
                if nimg is not None:
                    points.setdefault(result, {})[nimg] = float(value)
    return {name: ([n / 1000 for n in sorted(p)], [p[n] for n in sorted(p)]) for name, p in sorted(points.items())}


def run_curves(run_dir: str, held_out_data: Optional[ImageDataset] = None, count: int = 200) -> Dict[str, Curve]:
    """The run's curves by name (see the module docstring); a run without augmentation has p = 0."""
    options = checkpoint.read_run_options(run_dir)
    stats = read_jsonl(os.path.join(run_dir, "stats.jsonl"))
    if not stats:
        raise UserError(f"{run_dir} has no statistics yet (stats.jsonl)")
    kimg = [s["cur_nimg"] / 1000 for s in stats]
    curves = {RT: (kimg, [s.get("Loss/signs/real", float("nan")) for s in stats]),
              P: (kimg, [s.get("Progress/augment", 0.0) for s in stats])}
    curves.update(metric_curves(run_dir))
    if held_out_data is not None:
        train = open_dataset(options["options"]["data"])
        scores = held_out.checkpoint_scores(run_dir, held_out.training_images(train, count),
                                            held_out.held_out_images(train, held_out_data, count))
        curves[GAP] = ([s["cur_nimg"] / 1000 for s in scores], [s["D/gap"] for s in scores])
    return curves


def ada_target(run_dirs: Sequence[str]) -> Optional[float]:
    """The ADA target of the first run that adapts p (drawn as a guide on the r_t panel)."""
    for run_dir in run_dirs:
        target = checkpoint.read_run_options(run_dir)["config"]["train"].get("ada_target")
        if target is not None:
            return float(target)
    return None


def panels(runs: Dict[str, Dict[str, Curve]], target: Optional[float] = None) -> List[Panel]:
    """One panel per curve name (r_t, p, metrics on a log scale, the logit gap), each with every run's series."""
    names = [RT, P] + sorted({n for c in runs.values() for n in c} - {RT, P, GAP})
    names += [GAP] if any(GAP in c for c in runs.values()) else []
    out = []
    for name in names:
        series = [Series(label, *curves[name], COLOURS[k % len(COLOURS)])
                  for k, (label, curves) in enumerate(runs.items()) if name in curves]
        out.append(Panel(name, series, guides=[(target, "ADA target")] if name == RT and target is not None else [],
                         log_y=name not in (RT, P, GAP)))  # metrics fall by orders of magnitude
    return out


def summary(runs: Dict[str, Dict[str, Curve]], at: Sequence[float]) -> List[str]:
    """Table rows (markdown) of every curve's value nearest to each kimg in ``at``, per run."""
    rows = []
    for label, curves in runs.items():
        for name, (kimg, values) in curves.items():
            picked = [values[min(range(len(kimg)), key=lambda i: abs(kimg[i] - k))] if kimg else float("nan")
                      for k in at]
            rows.append(f"| {label} | {name} | " + " | ".join(f"{v:.3f}" for v in picked) + " |")
    return rows


def _is_fraction(name: str) -> bool:
    """Results in [0, 1] (accuracies, precision, recall) get a 0..1 axis; distances a log axis."""
    return any(word in name for word in ("acc", "precision", "recall"))


def metric_panels(curves: Dict[str, Curve], references: Optional[Dict[str, Sequence[Tuple[float, str]]]] = None,
                  ) -> List[Panel]:
    """A panel per metric result: fractions on 0..1, positive distances on a log axis, with
    ``references[name]`` as labelled dashed lines (e.g. the score of blurred real images)."""
    references = references or {}
    out = []
    for name, (kimg, values) in curves.items():
        fraction = _is_fraction(name)
        out.append(Panel(name + (" (higher is better)" if fraction else " (lower is better)"),
                         [Series(name, kimg, values, COLOURS[1])], guides=tuple(references.get(name, ())),
                         log_y=not fraction and min(values) > 0, y_range=(0.0, 1.0) if fraction else None))
    return out


def metric_table(curves: Dict[str, Curve]) -> str:
    """A markdown table: a row per result, a column per evaluated kimg."""
    kimgs = sorted({k for kimg, _ in curves.values() for k in kimg})
    lines = ["| kimg | " + " | ".join(f"{k:.1f}" for k in kimgs) + " |", "|---" * (len(kimgs) + 1) + "|"]
    for name, (kimg, values) in curves.items():
        at = dict(zip(kimg, values))
        lines.append(f"| {name} | " + " | ".join(f"{at[k]:.3g}" if k in at else "" for k in kimgs) + " |")
    return "\n".join(lines)
