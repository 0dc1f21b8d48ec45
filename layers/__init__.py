"""Keras 3 layers of StyleGAN2, one paper concept per module; all NHWC, all with get_config."""

from layers.discriminator import DiscriminatorBlock, DiscriminatorEpilogue, discriminator_blocks
from layers.equalized import EqualizedConv2D, EqualizedDense
from layers.mapping import MappingNetwork, normalize_2nd_moment
from layers.minibatch_std import MinibatchStd
from layers.modulated_conv import ModulatedConv2D, demodulation_coefficients, modulate, modulated_conv2d
from layers.noise import NoiseInjection
from layers.synthesis import SynthesisBlock, SynthesisLayer, SynthesisNetwork
from layers.to_rgb import ToRGB

__all__ = [
    "DiscriminatorBlock",
    "DiscriminatorEpilogue",
    "EqualizedConv2D",
    "EqualizedDense",
    "MappingNetwork",
    "MinibatchStd",
    "ModulatedConv2D",
    "NoiseInjection",
    "SynthesisBlock",
    "SynthesisLayer",
    "SynthesisNetwork",
    "ToRGB",
    "demodulation_coefficients",
    "discriminator_blocks",
    "modulate",
    "modulated_conv2d",
    "normalize_2nd_moment",
]
