"""Metrics: Fréchet and kernel distances over features, and the feature classifier that provides the
feature space for the embedded datasets."""

from tf_stylegan2.metrics.feature_classifier import FeatureClassifier, train_feature_classifier
from tf_stylegan2.metrics.features import (
    feature_frechet_distance,
    feature_kernel_distance,
    generator_source,
    real_features,
    source_features,
)
from tf_stylegan2.metrics.frechet import frechet_distance, mean_cov
from tf_stylegan2.metrics.kid import kernel_distance

__all__ = [
    "FeatureClassifier",
    "feature_frechet_distance",
    "feature_kernel_distance",
    "frechet_distance",
    "generator_source",
    "kernel_distance",
    "mean_cov",
    "real_features",
    "source_features",
    "train_feature_classifier",
]

# The official feature networks (Inception-v3 of the FID graph, VGG16 + LPIPS) from weights files.
from tf_stylegan2.metrics.detectors import load_inception, load_vgg16  # noqa: E402

__all__ += ["load_inception", "load_vgg16"]
