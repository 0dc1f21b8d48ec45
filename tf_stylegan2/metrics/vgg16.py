"""VGG16 (Simonyan & Zisserman, configuration D) in torchvision's layout, as a Keras model, NHWC.

Two uses in NVIDIA's metrics: the 4096-d fc2 features after ReLU of 224x224 images (the feature
space of stylegan2-ada's precision/recall, ``vgg16.pt`` with ``return_features=True``), and the
trunk's five ReLU stages that LPIPS compares (:mod:`tf_stylegan2.metrics.lpips`).

torchvision numbers the trunk's modules in one ``features`` Sequential (conv, ReLU, ..., max pool)
and the head in ``classifier`` (fc1, ReLU, dropout, fc2, ReLU, dropout, fc3); its forward flattens
the 7x7x512 map in NCHW order, so :func:`load_torch_weights` permutes fc1's input axis once to take
NHWC maps. The head stops at fc2: fc3's ImageNet logits are not used by any metric.
"""

from __future__ import annotations

from typing import Dict, List, Mapping, Tuple

import keras
import numpy as np
import tensorflow as tf

from tf_stylegan2.metrics.torch_state import checked_tensors

# Output channels of each conv, by stage; a 2x2 max pool follows every stage.
STAGES: Tuple[Tuple[int, ...], ...] = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))
FEATURE_DIM = 4096
HEAD_MAP = 7  # spatial size of the last pool at 224x224 input
_FLOAT = "float32"


def torchvision_conv_indices() -> List[int]:
    """Index of each conv in torchvision's ``features`` Sequential: 0, 2, 5, 7, 10, ..., 28
    (every conv is followed by a ReLU, every stage by a max pool)."""
    indices, i = [], 0
    for stage in STAGES:
        for _ in stage:
            indices.append(i)
            i += 2
        i += 1
    return indices


@keras.saving.register_keras_serializable(package="tf_stylegan2")
class VGG16(keras.Model):
    """torchvision's VGG16 without fc3, NHWC, input normalised by ``preprocess.vgg16_input`` or
    ``preprocess.lpips_input``.

    Shapes: ``call``: ``[N, 224, 224, 3] -> [N, 4096]`` (fc2 after ReLU);
    ``stages``: ``[N, H, W, 3]`` -> the ReLU outputs relu1_2, relu2_2, relu3_3, relu4_3, relu5_3
    (``[N, H, W, 64]`` ... ``[N, H/16, W/16, 512]``).
    """

    def __init__(self, **kwargs):
        kwargs.setdefault("dtype", _FLOAT)
        super().__init__(**kwargs)
        self.convs = []
        in_channels = 3
        for s, stage in enumerate(STAGES):
            for c, channels in enumerate(stage):
                conv = keras.layers.Conv2D(
                    channels, 3, padding="same", activation="relu", kernel_initializer="zeros", dtype=_FLOAT,
                    name=f"conv{s + 1}_{c + 1}",
                )
                conv.build((None, None, None, in_channels))
                self.convs.append(conv)
                in_channels = channels
        # Weights come from files: zeros, not a random initialiser (fc1 alone has 102.8 M values).
        dense = dict(activation="relu", kernel_initializer="zeros", dtype=_FLOAT)
        self.fc1 = keras.layers.Dense(FEATURE_DIM, name="fc1", **dense)
        self.fc1.build((None, HEAD_MAP * HEAD_MAP * in_channels))
        self.fc2 = keras.layers.Dense(FEATURE_DIM, name="fc2", **dense)
        self.fc2.build((None, FEATURE_DIM))
        self.built = True

    def stages(self, x: tf.Tensor) -> List[tf.Tensor]:
        outputs, convs = [], iter(self.convs)
        for s, stage in enumerate(STAGES):
            if s:
                x = tf.nn.max_pool2d(x, 2, 2, "VALID")
            for _ in stage:
                x = next(convs)(x)
            outputs.append(x)
        return outputs

    def call(self, x: tf.Tensor) -> tf.Tensor:
        if x.shape[1] is not None and (x.shape[1], x.shape[2]) != (224, 224):
            raise ValueError(f"VGG16's classifier takes 224x224 input, got {x.shape.as_list()}")
        x = tf.nn.max_pool2d(self.stages(x)[-1], 2, 2, "VALID")
        x = tf.reshape(x, [-1, HEAD_MAP * HEAD_MAP * x.shape[-1]])
        return self.fc2(self.fc1(x))


def expected_shapes() -> Dict[str, Tuple[int, ...]]:
    """Torch-layout shapes of the tensors :func:`load_torch_weights` reads, torchvision's names."""
    shapes, in_channels = {}, 3
    for index, channels in zip(torchvision_conv_indices(), [c for stage in STAGES for c in stage]):
        shapes[f"features.{index}.weight"] = (channels, in_channels, 3, 3)
        shapes[f"features.{index}.bias"] = (channels,)
        in_channels = channels
    shapes["classifier.0.weight"] = (FEATURE_DIM, HEAD_MAP * HEAD_MAP * in_channels)
    shapes["classifier.0.bias"] = (FEATURE_DIM,)
    shapes["classifier.3.weight"] = (FEATURE_DIM, FEATURE_DIM)
    shapes["classifier.3.bias"] = (FEATURE_DIM,)
    return shapes


def load_torch_weights(model: VGG16, state: Mapping[str, np.ndarray], source: str = "weights") -> None:
    """Assigns a torchvision-named VGG16 state dict (conv ``[out, in, 3, 3]``, linear
    ``[out, in]``) to ``model``. Missing tensors or wrong shapes are a UserError naming ``source``."""
    tensors = checked_tensors(state, expected_shapes(), source, "torchvision's VGG16")
    for conv, index in zip(model.convs, torchvision_conv_indices()):
        conv.kernel.assign(np.transpose(tensors[f"features.{index}.weight"], (2, 3, 1, 0)))
        conv.bias.assign(tensors[f"features.{index}.bias"])
    # fc1 reads torch's NCHW flattening (c, h, w); ours flattens NHWC (h, w, c).
    w1 = tensors["classifier.0.weight"]
    channels = w1.shape[1] // (HEAD_MAP * HEAD_MAP)
    w1 = w1.reshape(FEATURE_DIM, channels, HEAD_MAP, HEAD_MAP).transpose(2, 3, 1, 0).reshape(-1, FEATURE_DIM)
    model.fc1.kernel.assign(w1)
    model.fc1.bias.assign(tensors["classifier.0.bias"])
    model.fc2.kernel.assign(tensors["classifier.3.weight"].T)
    model.fc2.bias.assign(tensors["classifier.3.bias"])
