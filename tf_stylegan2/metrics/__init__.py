"""Metrics: FID, KID, precision/recall, PPL and IS as stylegan2-ada computes them (suite.py names
them), their feature statistics (stats.py), and the feature classifier that provides a feature space
for the embedded datasets."""

from tf_stylegan2.metrics.detectors import load_inception, load_vgg16  # the feature networks' files
from tf_stylegan2.metrics.feature_classifier import FeatureClassifier, train_feature_classifier
from tf_stylegan2.metrics.features import (
    feature_frechet_distance,
    feature_kernel_distance,
    generator_source,
    real_features,
    source_features,
)
from tf_stylegan2.metrics.frechet import fid_from_features, frechet_distance, mean_cov
from tf_stylegan2.metrics.inception_score import inception_score
from tf_stylegan2.metrics.kid import kernel_distance, kid_from_features
from tf_stylegan2.metrics.perceptual_path_length import perceptual_path_length
from tf_stylegan2.metrics.precision_recall import precision_recall
from tf_stylegan2.metrics.stats import FeatureDetector, FeatureStats
from tf_stylegan2.metrics.suite import MetricOptions, MetricSuite, evaluate, parse_metric, report_metric

__all__ = [
    "FeatureClassifier",
    "FeatureDetector",
    "FeatureStats",
    "MetricOptions",
    "MetricSuite",
    "evaluate",
    "feature_frechet_distance",
    "feature_kernel_distance",
    "fid_from_features",
    "frechet_distance",
    "generator_source",
    "inception_score",
    "kernel_distance",
    "kid_from_features",
    "load_inception",
    "load_vgg16",
    "mean_cov",
    "parse_metric",
    "perceptual_path_length",
    "precision_recall",
    "real_features",
    "report_metric",
    "source_features",
    "train_feature_classifier",
]
