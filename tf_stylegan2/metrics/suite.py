"""The metrics a training run evaluates at every snapshot, by name.

``fd2k_clf`` / ``kid2k_clf``: Fréchet and kernel distance between 2000 images of G_ema and 2000
dataset images, in the feature space of a classifier trained on the dataset's class labels
(``feature_classifier``). They need a class-labelled dataset (the embedded ones are), and they are
comparable within a dataset only: the feature space is the dataset's own.
"""

from __future__ import annotations

from typing import Dict, Sequence

from tf_stylegan2.fileio import UserError
from tf_stylegan2.metrics.feature_classifier import train_feature_classifier
from tf_stylegan2.metrics.features import generator_source, real_features, source_features
from tf_stylegan2.metrics.frechet import frechet_distance, mean_cov
from tf_stylegan2.metrics.kid import kernel_distance

METRIC_NAMES = ("fd2k_clf", "kid2k_clf")
NUM_IMAGES = 2000


def check_metric_names(names: Sequence[str]) -> None:
    unknown = [n for n in names if n not in METRIC_NAMES]
    if unknown:
        raise UserError(f"unknown metric {unknown[0]!r}; expected some of {', '.join(METRIC_NAMES)}")


class MetricSuite:
    """Trains what the named metrics need once, then ``suite(G)`` -> ``{name: value}``.

    Deterministic: the classifier, the real images and the generator's latents and noise all come
    from fixed seeds, so a value changes only because G did.
    """

    def __init__(self, names: Sequence[str], dataset, seed: int = 0):
        check_metric_names(names)
        self.names = tuple(names)
        self.dataset = dataset
        self.seed = seed
        self._real = None
        if self.names:
            try:
                self.classifier = train_feature_classifier(dataset, seed=seed)
            except UserError as e:
                raise UserError(f"metrics {', '.join(self.names)}: {e}") from None
            self._real = real_features(dataset, self.classifier, NUM_IMAGES, seed)
            self._real_stats = mean_cov(self._real)

    def __call__(self, G) -> Dict[str, float]:
        if not self.names:
            return {}
        fake = source_features(generator_source(G, self.dataset, seed=self.seed), self.classifier, NUM_IMAGES)
        results = {}
        if "fd2k_clf" in self.names:
            results["fd2k_clf"] = frechet_distance(*mean_cov(fake), *self._real_stats)
        if "kid2k_clf" in self.names:
            results["kid2k_clf"] = kernel_distance(fake, self._real, seed=self.seed)
        return {k: float(v) for k, v in results.items()}
