"""tf-stylegan2: StyleGAN2 for TensorFlow 2 and Keras 3."""

from tf_stylegan2.config import (
    PRESETS,
    DiscriminatorConfig,
    GeneratorConfig,
    MappingConfig,
    StyleGAN2Config,
    TrainingConfig,
    resolve,
)
from tf_stylegan2.networks import Discriminator, Generator

__all__ = [
    "PRESETS",
    "Discriminator",
    "DiscriminatorConfig",
    "Generator",
    "GeneratorConfig",
    "MappingConfig",
    "StyleGAN2Config",
    "TrainingConfig",
    "resolve",
]
