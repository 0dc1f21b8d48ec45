"""Metrics by name, as stylegan2-ada's metric_main: what each name means, and evaluating a list of
them for one generator.

The names are parsed, so that the quick variants for development come from the same rules as
NVIDIA's metrics (one source for each fact):

  fid<N>k_full   FID, N thousand generated images against every real image (never mirrored)
  fid<N>k        FID against the first N thousand real images (mirrored copies count with --mirror)
  kid<N>k_full   KID (100 subsets of 1000), real images up to 1,000,000; kid<N>k: N thousand
  pr<N>k<K>_full precision/recall with K-neighbourhoods (VGG16 fc2), real images up to 200,000;
                 pr<N>k<K>: N thousand
  is<N>k         Inception score, 10 splits
  ppl2_<s><p>    PPL without the crop, 50,000 samples (s: z|w space, p: full|end sampling)
  ppl<N>k_<s><p> the same with N thousand samples
  ppl_<s><p>     the legacy PPL: with the centre crop, 50,000 samples
  fd<N>k_clf, kid<N>k_clf  Fréchet / kernel distance in the feature space of a classifier trained on
                 the dataset's labels (tf_stylegan2.metrics.feature_classifier): for the embedded
                 datasets, comparable within one dataset only, never with published numbers;
                 fd<N>k_full_clf, kid<N>k_full_clf: against every real image (small datasets)
  acc<N>k_clf    that classifier's accuracy on N thousand generated images: conditional, the
                 fraction classified as the class asked for; unconditional, the fraction it puts in
                 one class with probability > 0.9 (a number in [0, 1] that needs no reference)

NVIDIA's names among them: fid50k_full, kid50k_full, pr50k3_full, ppl2_wend, is50k (primary) and
fid50k, kid50k, pr50k3, ppl_zfull, ppl_wfull, ppl_zend, ppl_wend (legacy).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import tensorflow as tf

from tf_stylegan2.data import ImageDataset
from tf_stylegan2.fileio import UserError
from tf_stylegan2.metrics.precision_recall import precision_recall
from tf_stylegan2.metrics.frechet import frechet_distance, mean_cov
from tf_stylegan2.metrics.inception_score import inception_score
from tf_stylegan2.metrics.kid import kernel_distance
from tf_stylegan2.metrics.perceptual_path_length import perceptual_path_length
from tf_stylegan2.metrics.stats import (
    DEFAULT_BATCH_GEN,
    DEFAULT_BATCH_SIZE,
    DEFAULT_CACHE_DIR,
    FeatureDetector,
    FeatureStats,
    Log,
    dataset_stats,
    generator_stats,
    num_real_items,
)
from tf_stylegan2.progress import format_duration

INCEPTION, VGG16, CLASSIFIER = "inception", "vgg16", "classifier"
PPL_SAMPLES = 50000
KID_SUBSETS, KID_SUBSET_SIZE = 100, 1000
IS_SPLITS = 10
PPL_EPSILON = 1e-4
FULL_MAX_REAL = {"fid": None, "kid": 1000000, "pr": 200000}  # NVIDIA's caps of the _full variants
PR_BATCH = 10000  # NVIDIA's row_batch_size and col_batch_size


@dataclasses.dataclass(frozen=True)
class MetricSpec:
    """What a metric name means."""

    name: str
    kind: str  # fid | kid | pr | is | ppl | fd_clf | kid_clf | acc_clf
    num_gen: int  # generated images (PPL: samples)
    max_real: Optional[int] = None  # real images at most; None: all
    full: bool = False  # the _full variants: real images never mirrored, only the formula's minimum needed
    nhood_size: int = 3
    space: str = "w"
    sampling: str = "end"
    crop: bool = False

    @property
    def network(self) -> str:
        networks = {"fid": INCEPTION, "kid": INCEPTION, "is": INCEPTION, "pr": VGG16, "ppl": VGG16}
        return networks.get(self.kind, CLASSIFIER)

    @property
    def uses_reals(self) -> bool:
        return self.kind in ("fid", "kid", "pr", "fd_clf", "kid_clf")

    def min_real(self) -> int:
        """Real images the metric needs: the stated number for the fixed-count variants, the formula's
        minimum for the _full ones."""
        if not self.full and self.max_real is not None:
            return self.max_real
        return self.nhood_size + 1 if self.kind == "pr" else 2


def _k(count: str) -> int:
    return int(count) * 1000


_N = r"([1-9][0-9]*)k"  # a count in thousands, e.g. 50k
_PATTERNS: List[Tuple[str, Callable[..., MetricSpec]]] = [
    (rf"fid{_N}(_full)?", lambda name, n, full: MetricSpec(
        name, "fid", _k(n), FULL_MAX_REAL["fid"] if full else _k(n), bool(full))),
    (rf"kid{_N}(_full)?", lambda name, n, full: MetricSpec(
        name, "kid", _k(n), FULL_MAX_REAL["kid"] if full else _k(n), bool(full))),
    (rf"pr{_N}([1-9][0-9]*)(_full)?", lambda name, n, k, full: MetricSpec(
        name, "pr", _k(n), FULL_MAX_REAL["pr"] if full else _k(n), bool(full), nhood_size=int(k))),
    (rf"is{_N}", lambda name, n: MetricSpec(name, "is", _k(n))),
    (r"ppl2_([zw])(full|end)", lambda name, s, p: MetricSpec(name, "ppl", PPL_SAMPLES, space=s, sampling=p)),
    (rf"ppl{_N}_([zw])(full|end)", lambda name, n, s, p: MetricSpec(name, "ppl", _k(n), space=s, sampling=p)),
    (r"ppl_([zw])(full|end)", lambda name, s, p: MetricSpec(name, "ppl", PPL_SAMPLES, space=s, sampling=p,
                                                           crop=True)),
    (rf"fd{_N}(_full)?_clf", lambda name, n, full: MetricSpec(name, "fd_clf", _k(n), None if full else _k(n),
                                                             bool(full))),
    (rf"kid{_N}(_full)?_clf", lambda name, n, full: MetricSpec(name, "kid_clf", _k(n), None if full else _k(n),
                                                              bool(full))),
    (rf"acc{_N}_clf", lambda name, n: MetricSpec(name, "acc_clf", _k(n))),
]
EXAMPLES = ("fid50k_full, kid50k_full, pr50k3_full, ppl2_wend, is50k, fid50k, kid50k, pr50k3, ppl_zfull, ppl_wfull, "
            "ppl_zend, ppl_wend, quick variants such as fid2k_full or ppl2k_wend, and fd2k_clf, kid2k_clf, acc2k_clf, "
            "fd2k_full_clf")


def parse_metric(name: str) -> MetricSpec:
    """The spec of a metric name; a UserError for an unknown one."""
    for pattern, make in _PATTERNS:
        m = re.fullmatch(pattern, name)
        if m:
            return make(name, *m.groups())
    raise UserError(f"unknown metric {name!r}; expected e.g. {EXAMPLES}")


def check_metric_names(names: Sequence[str]) -> None:
    for name in names:
        parse_metric(name)


# ---- feature networks -------------------------------------------------------------------------


@dataclasses.dataclass
class FeatureNetworks:
    """The feature networks a list of metrics needs (None where none needs one).

    ``inception``: called on uint8 images, returns ``{"pool3": [N, 2048], "logits": [N, 1008]}``;
    ``vgg16``: ``features(uint8) -> [N, 4096]`` and ``lpips(a, b) -> [N]`` on float images in
    [-1, 1]; both carry ``identity`` (their weights file). ``classifier``: the FeatureClassifier
    of the ``*_clf`` metrics. Tests pass stand-ins; :func:`load_networks` reads the real files.
    """

    inception: Any = None
    vgg16: Any = None
    classifier: Any = None

    def detector(self, features: str) -> FeatureDetector:
        """'pool3' or 'logits' of Inception, 'fc2' of VGG16."""
        if features in ("pool3", "logits"):
            net = self.inception
            return FeatureDetector(f"inception-{features}", lambda x: net(x)[features], dict(net.identity))
        if features == "fc2":
            return FeatureDetector("vgg16-fc2", self.vgg16.features, dict(self.vgg16.identity))
        raise ValueError(f"no detector for {features!r}")

    def identity(self, network: str) -> Dict[str, str]:
        if network == CLASSIFIER:
            return {"network": "feature classifier trained on the dataset (tf_stylegan2.metrics.feature_classifier)"}
        return dict(getattr(self, network).identity)


def needed_networks(specs: Sequence[MetricSpec]) -> List[str]:
    return sorted({s.network for s in specs})


def check_files_given(specs: Sequence[MetricSpec], inception: Optional[str], vgg16: Optional[str]) -> None:
    """A UserError naming the flag when a metric's weights file is not given."""
    needs = needed_networks(specs)
    for network, path, flag in ((INCEPTION, inception, "--inception"), (VGG16, vgg16, "--vgg16")):
        if network in needs and not path:
            users = ", ".join(s.name for s in specs if s.network == network)
            raise UserError(f"{users} need{'s' if ',' not in users else ''} the {network} weights: pass {flag}=<file> "
                            "(docs/METRICS.md says which files work and where to get them)")


def load_networks(
    specs: Sequence[MetricSpec],
    *,
    inception: Optional[str] = None,
    vgg16: Optional[str] = None,
    lpips: Optional[str] = None,
    dataset: Optional[ImageDataset] = None,
    seed: int = 0,
    strategy: Optional[tf.distribute.Strategy] = None,
) -> FeatureNetworks:
    """Reads the weights files the metrics need (a UserError naming the flag when one is missing,
    or the file when it is not the right network) and trains the classifier of ``*_clf`` metrics.
    With a ``strategy`` the feature networks are built in its scope (one copy of the weights per
    device)."""
    check_files_given(specs, inception, vgg16)
    needs = needed_networks(specs)
    networks = FeatureNetworks()
    if INCEPTION in needs or VGG16 in needs:
        from tf_stylegan2.metrics import detectors  # the feature networks' readers

        with strategy.scope() if strategy else contextlib.nullcontext():
            if INCEPTION in needs:
                networks.inception = detectors.load_inception(inception)
            if VGG16 in needs:
                networks.vgg16 = detectors.load_vgg16(vgg16, lpips_path=lpips)
    if VGG16 in needs and any(s.kind == "ppl" for s in specs):  # fails now, naming the file, without LPIPS weights
        blank = tf.zeros([1, 16, 16, 3])
        networks.vgg16.lpips(blank, blank)
    if CLASSIFIER in needs:
        from tf_stylegan2.metrics.feature_classifier import train_feature_classifier

        users = ", ".join(s.name for s in specs if s.network == CLASSIFIER)
        try:
            networks.classifier = train_feature_classifier(dataset, seed=seed)
        except UserError as e:
            raise UserError(f"metrics {users}: {e}") from None
    return networks


# ---- evaluation -------------------------------------------------------------------------------


@dataclasses.dataclass
class MetricOptions:
    """How metrics are evaluated (stylegan2-ada's MetricOptions, less the generator).

    ``mirror``: the real images of the legacy (not _full) metrics include their x-flips, as the
    dataset was seen in training with --mirror. ``cache_dir``: where real statistics are cached
    (None: no cache). ``strategy``: replicas to split the work over (None: the default device).
    """

    dataset: ImageDataset
    networks: FeatureNetworks
    truncation_psi: float = 1.0
    mirror: bool = False
    seed: int = 0
    cache_dir: Optional[str] = DEFAULT_CACHE_DIR
    strategy: Optional[tf.distribute.Strategy] = None
    batch_size: int = DEFAULT_BATCH_SIZE
    log: Optional[Log] = None

    def __post_init__(self):
        check_batch_size(self.batch_size)

    @property
    def num_replicas(self) -> int:
        return (self.strategy or tf.distribute.get_strategy()).num_replicas_in_sync


def check_batch_size(batch_size: int) -> None:
    if batch_size < 1 or batch_size % DEFAULT_BATCH_GEN:
        raise UserError(f"the batch size must be a positive multiple of {DEFAULT_BATCH_GEN} (the images per "
                        f"generator call), got {batch_size}")


def _real_mirror(spec: MetricSpec, mirror: bool) -> bool:
    return mirror and not spec.full


def check_dataset(specs: Sequence[MetricSpec], dataset: ImageDataset, mirror: bool) -> None:
    """A UserError when the dataset has fewer real images than a metric needs."""
    for spec in specs:
        if not spec.uses_reals:
            continue
        flips = _real_mirror(spec, mirror)
        have = num_real_items(dataset, None, flips)
        if have < spec.min_real():
            counted = f"{len(dataset)} images" + (f" ({have} with their x-flips, --mirror)" if flips else "")
            hint = "" if spec.full else " (the _full variants use every real image there is)"
            raise UserError(f"{spec.name} needs {spec.min_real()} real images, but dataset {dataset.info.path} "
                            f"has {counted}{hint}")


def check_generator(G, dataset: ImageDataset) -> None:
    """A UserError when the generator does not make images like the dataset's."""
    info = dataset.info
    if (G.img_resolution, G.img_channels) != (info.resolution, info.channels):
        raise UserError(f"the generator makes {G.img_resolution}x{G.img_resolution}x{G.img_channels} images but dataset "
                        f"{info.path} holds {info.resolution}x{info.resolution}x{info.channels}")
    if G.c_dim and G.c_dim != info.c_dim:
        raise UserError(f"the generator is conditional with c_dim {G.c_dim} but dataset {info.path} has c_dim {info.c_dim}")


# What each kind of metric reads: (features, generated captures, real captures); 'all' keeps every
# feature row, 'mean_cov' the float64 sums only.
_FEATURES = {"fid": ("pool3", "mean_cov", "mean_cov"), "kid": ("pool3", "all", "all"), "pr": ("fc2", "all", "all"),
             "is": ("logits", "all", None)}


class _Evaluation:
    """One evaluation of several metrics: features of the same images are computed once (e.g.
    fid50k_full and kid50k_full share the 50k generated Inception features), each kept in the
    forms (all rows, mean/cov) that some metric of the list needs."""

    def __init__(self, G, specs: Sequence[MetricSpec], opts: MetricOptions, reals: Dict[tuple, FeatureStats]):
        self.G, self.opts = G, opts
        self._captures: Dict[tuple, set] = {}
        self._stats: Dict[tuple, Any] = {}
        self._reals = reals  # real statistics, kept by the caller across evaluations
        for spec in specs:
            if spec.kind in _FEATURES:
                _, gen, real = _FEATURES[spec.kind]
                self._captures.setdefault(self._gen_key(spec), set()).add(gen)
                if real:
                    self._captures.setdefault(self._real_key(spec), set()).add(real)

    def _gen_key(self, spec: MetricSpec) -> tuple:
        return ("gen", _FEATURES[spec.kind][0], spec.num_gen)

    def _real_key(self, spec: MetricSpec) -> tuple:
        mirror = _real_mirror(spec, self.opts.mirror)
        return ("real", _FEATURES[spec.kind][0], num_real_items(self.opts.dataset, spec.max_real, mirror), mirror)

    def _get(self, key: tuple) -> FeatureStats:
        store = self._stats if key[0] == "gen" else self._reals
        if key not in store:
            opts, captures = self.opts, self._captures[key]
            detector = opts.networks.detector(key[1])
            kw = dict(capture_all="all" in captures, capture_mean_cov="mean_cov" in captures,
                      batch_size=opts.batch_size, strategy=opts.strategy, log=opts.log)
            if key[0] == "gen":
                store[key] = generator_stats(self.G, detector, num_items=key[2], labels=opts.dataset.labels,
                                             seed=opts.seed, truncation_psi=opts.truncation_psi, **kw)
            else:
                store[key] = dataset_stats(opts.dataset, detector, max_items=key[2], mirror=key[3],
                                           cache_dir=opts.cache_dir, **kw)
        return store[key]

    def results(self, spec: MetricSpec) -> Dict[str, float]:
        opts, name = self.opts, spec.name
        if spec.kind in ("fd_clf", "kid_clf", "acc_clf"):
            return {name: self._classifier_metric(spec)}
        if spec.kind == "ppl":
            from tf_stylegan2.networks import float32_generator

            value = perceptual_path_length(
                float32_generator(self.G), opts.networks.vgg16.lpips, num_samples=spec.num_gen,
                epsilon=PPL_EPSILON, space=spec.space, sampling=spec.sampling, crop=spec.crop,
                labels=opts.dataset.labels, seed=opts.seed, truncation_psi=opts.truncation_psi,
                strategy=opts.strategy, log=opts.log)
            return {name: value}
        fake = self._get(self._gen_key(spec))
        if spec.kind == "is":
            mean, std = inception_score(fake.features(), IS_SPLITS)
            return {f"{name}_mean": mean, f"{name}_std": std}
        real = self._get(self._real_key(spec))
        if spec.kind == "fid":
            return {name: frechet_distance(*fake.mean_cov(), *real.mean_cov())}
        if spec.kind == "kid":
            return {name: kernel_distance(fake.features(), real.features(), KID_SUBSETS, KID_SUBSET_SIZE, opts.seed)}
        precision, recall = precision_recall(real.features(), fake.features(), spec.nhood_size, PR_BATCH, PR_BATCH)
        return {f"{name}_precision": precision, f"{name}_recall": recall}

    def _classifier_metric(self, spec: MetricSpec) -> float:
        """The classifier-space distances and the accuracy; the generated images of one count are
        classified once for all three (fd2k_clf and acc2k_clf read the same images)."""
        from tf_stylegan2.metrics.feature_classifier import sample_accuracy
        from tf_stylegan2.metrics.features import generator_outputs, real_features

        opts, classifier = self.opts, self.opts.networks.classifier
        key = ("clf", spec.num_gen)
        if key not in self._stats:
            self._stats[key] = generator_outputs(self.G, opts.dataset, classifier, spec.num_gen, seed=opts.seed,
                                                 truncation_psi=opts.truncation_psi)
        fake, probabilities, classes = self._stats[key]
        if spec.kind == "acc_clf":
            return sample_accuracy(probabilities, classes)
        num_real = len(opts.dataset) if spec.max_real is None else spec.max_real
        real_key = ("clf-real", num_real)
        if real_key not in self._stats:
            self._stats[real_key] = real_features(opts.dataset, classifier, num_real, opts.seed)
        real = self._stats[real_key]
        if spec.kind == "fd_clf":
            return frechet_distance(*mean_cov(fake), *mean_cov(real))
        return kernel_distance(fake, real, seed=opts.seed)


def evaluate(G, metrics: Sequence[Union[str, MetricSpec]], opts: MetricOptions,
             report: Optional[Callable[[Dict[str, Any]], None]] = None,
             reals: Optional[Dict[tuple, FeatureStats]] = None) -> List[Dict[str, Any]]:
    """Evaluates the metrics (names, or specs such as a name's with a smaller count) for ``G``;
    one record per metric with stylegan2-ada's fields (``results``, ``metric``, ``total_time``,
    ``total_time_str``, ``num_gpus``) plus ``detector``, the identity of the feature network's
    weights. ``report(record)`` is called as each finishes; ``reals`` keeps the real statistics
    for the next call with the same options (the training loop's snapshots).

    Every check (names, networks, generator against dataset, enough real images) happens before
    the first image is generated.
    """
    specs = [m if isinstance(m, MetricSpec) else parse_metric(m) for m in metrics]
    check_generator(G, opts.dataset)
    check_dataset(specs, opts.dataset, opts.mirror)
    missing = [s.name for s in specs if getattr(opts.networks, s.network) is None]
    if missing:
        raise UserError(f"no feature network loaded for {', '.join(missing)}")
    evaluation = _Evaluation(G, specs, opts, {} if reals is None else reals)
    records = []
    for spec in specs:
        start = time.time()
        results = {k: float(v) for k, v in evaluation.results(spec).items()}
        total = time.time() - start
        record = {"results": results, "metric": spec.name, "total_time": total,
                  "total_time_str": format_duration(total), "num_gpus": opts.num_replicas,
                  "detector": opts.networks.identity(spec.network)}
        records.append(record)
        if report is not None:
            report(record)
    return records


def report_metric(record: Dict[str, Any], run_dir: Optional[str] = None, snapshot: Optional[str] = None,
                  **extra: Any) -> str:
    """The record as one JSON line with ``snapshot_pkl`` (the network file, relative to ``run_dir``;
    NVIDIA's field name) and ``timestamp``, appended to ``<run_dir>/metric-<name>.jsonl`` when a run
    directory is given (one write, so a line is never half there); returns the line."""
    if run_dir is not None and snapshot is not None:
        snapshot = os.path.relpath(snapshot, run_dir)
    line = json.dumps(dict(record, snapshot_pkl=snapshot, timestamp=time.time(), **extra))
    if run_dir is not None:
        with open(os.path.join(run_dir, f"metric-{record['metric']}.jsonl"), "a", encoding="utf-8") as f:
            f.write(line + "\n")
    return line


class MetricSuite:
    """The metrics a training run evaluates at every snapshot: ``suite(G)`` -> records.

    Everything that can fail on the user's input fails here, at start-up: unknown names, missing or
    wrong weights files, too few real images (the run directory does not exist yet then).
    Deterministic: the generator's latents and noise come from ``seed``, so a value changes only
    because G did; real statistics are computed (or read from the cache) at the first snapshot and
    kept.
    """

    def __init__(self, names: Sequence[str], dataset: ImageDataset, *, seed: int = 0, inception: Optional[str] = None,
                 vgg16: Optional[str] = None, lpips: Optional[str] = None, mirror: bool = False,
                 cache_dir: Optional[str] = DEFAULT_CACHE_DIR, strategy: Optional[tf.distribute.Strategy] = None,
                 log: Optional[Log] = None):
        self.names = tuple(names)
        specs = [parse_metric(n) for n in self.names]
        check_files_given(specs, inception, vgg16)
        check_dataset(specs, dataset, mirror)
        networks = load_networks(specs, inception=inception, vgg16=vgg16, lpips=lpips, dataset=dataset, seed=seed,
                                 strategy=strategy)
        self.options = MetricOptions(dataset, networks, mirror=mirror, seed=seed, cache_dir=cache_dir,
                                     strategy=strategy, log=log)
        self._reals: Dict[tuple, FeatureStats] = {}

    def __call__(self, G) -> List[Dict[str, Any]]:
        return evaluate(G, self.names, self.options, reals=self._reals) if self.names else []
