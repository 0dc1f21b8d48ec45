"""Random weights for the feature networks as numpy state dicts, in torch's names and layouts.

Shared by the tests (which build our Keras networks from them) and by ``make_goldens.py`` (which
loads them into the public reference implementations), so that no weight file is committed. numpy
only: CI has no torch.

The shapes are written down here from the reference architectures (pytorch-fid's FID Inception,
torchvision's VGG16, lpips' linear layers), not taken from our code, so a wrong shape on our side
fails the load. The values keep activations O(1) through the depth, so that matching outputs mean
matching networks: He-scaled convolutions, and batch-norm statistics drawn first with scale and
shift then chosen so that each unit's effective affine map is ``y * U(0.8, 1.2) + N(0, 0.1)``
(every one of the four BN tensors still matters: misusing one changes the outputs by O(1)).
"""

from __future__ import annotations

from typing import Dict, List, Tuple

import numpy as np

BN_EPSILON = 1e-3
INCEPTION_SEED, VGG16_SEED, LPIPS_SEED = 2015, 1409, 1801

Unit = Tuple[str, int, int, int, int]  # name, in channels, out channels, kh, kw


def inception_units() -> List[Unit]:
    """Every conv unit of pytorch-fid's FID Inception-v3, in network order."""
    units = [("Conv2d_1a_3x3", 3, 32, 3, 3), ("Conv2d_2a_3x3", 32, 32, 3, 3), ("Conv2d_2b_3x3", 32, 64, 3, 3),
             ("Conv2d_3b_1x1", 64, 80, 1, 1), ("Conv2d_4a_3x3", 80, 192, 3, 3)]

    def add(block: str, specs) -> None:
        units.extend((f"{block}.{name}", cin, cout, kh, kw) for name, cin, cout, kh, kw in specs)

    for block, cin, pool in (("Mixed_5b", 192, 32), ("Mixed_5c", 256, 64), ("Mixed_5d", 288, 64)):
        add(block, [("branch1x1", cin, 64, 1, 1), ("branch5x5_1", cin, 48, 1, 1), ("branch5x5_2", 48, 64, 5, 5),
                    ("branch3x3dbl_1", cin, 64, 1, 1), ("branch3x3dbl_2", 64, 96, 3, 3),
                    ("branch3x3dbl_3", 96, 96, 3, 3), ("branch_pool", cin, pool, 1, 1)])
    add("Mixed_6a", [("branch3x3", 288, 384, 3, 3), ("branch3x3dbl_1", 288, 64, 1, 1),
                     ("branch3x3dbl_2", 64, 96, 3, 3), ("branch3x3dbl_3", 96, 96, 3, 3)])
    for block, c7 in (("Mixed_6b", 128), ("Mixed_6c", 160), ("Mixed_6d", 160), ("Mixed_6e", 192)):
        add(block, [("branch1x1", 768, 192, 1, 1), ("branch7x7_1", 768, c7, 1, 1), ("branch7x7_2", c7, c7, 1, 7),
                    ("branch7x7_3", c7, 192, 7, 1), ("branch7x7dbl_1", 768, c7, 1, 1),
                    ("branch7x7dbl_2", c7, c7, 7, 1), ("branch7x7dbl_3", c7, c7, 1, 7),
                    ("branch7x7dbl_4", c7, c7, 7, 1), ("branch7x7dbl_5", c7, 192, 1, 7),
                    ("branch_pool", 768, 192, 1, 1)])
    add("Mixed_7a", [("branch3x3_1", 768, 192, 1, 1), ("branch3x3_2", 192, 320, 3, 3),
                     ("branch7x7x3_1", 768, 192, 1, 1), ("branch7x7x3_2", 192, 192, 1, 7),
                     ("branch7x7x3_3", 192, 192, 7, 1), ("branch7x7x3_4", 192, 192, 3, 3)])
    for block, cin in (("Mixed_7b", 1280), ("Mixed_7c", 2048)):
        add(block, [("branch1x1", cin, 320, 1, 1), ("branch3x3_1", cin, 384, 1, 1),
                    ("branch3x3_2a", 384, 384, 1, 3), ("branch3x3_2b", 384, 384, 3, 1),
                    ("branch3x3dbl_1", cin, 448, 1, 1), ("branch3x3dbl_2", 448, 384, 3, 3),
                    ("branch3x3dbl_3a", 384, 384, 1, 3), ("branch3x3dbl_3b", 384, 384, 3, 1),
                    ("branch_pool", cin, 192, 1, 1)])
    return units


def _normal(rng: np.random.Generator, shape, std: float) -> np.ndarray:
    x = rng.standard_normal(shape, dtype=np.float32)
    x *= np.float32(std)
    return x


def inception_state(seed: int = INCEPTION_SEED) -> Dict[str, np.ndarray]:
    """pytorch-fid-named state dict (``Mixed_7c.branch_pool.bn.running_var``, ``fc.weight``)."""
    rng = np.random.default_rng(seed)
    state = {}
    for name, cin, cout, kh, kw in inception_units():
        state[f"{name}.conv.weight"] = _normal(rng, (cout, cin, kh, kw), np.sqrt(2.0 / (cin * kh * kw)))
        mean = _normal(rng, cout, 0.5)
        var = rng.uniform(0.5, 2.0, cout).astype(np.float32)
        gain = rng.uniform(0.8, 1.2, cout).astype(np.float32)
        shift = _normal(rng, cout, 0.1)
        gamma = gain * np.sqrt(var + BN_EPSILON, dtype=np.float32)
        state[f"{name}.bn.weight"] = gamma
        state[f"{name}.bn.bias"] = shift + mean * gain
        state[f"{name}.bn.running_mean"] = mean
        state[f"{name}.bn.running_var"] = var
    state["fc.weight"] = _normal(rng, (1008, 2048), np.sqrt(1.0 / 2048))
    state["fc.bias"] = _normal(rng, 1008, 1.0)  # the unbiased logits never use it
    return state


# torchvision's VGG16: index in `features` and channels of each conv.
VGG16_CONVS = ((0, 64), (2, 64), (5, 128), (7, 128), (10, 256), (12, 256), (14, 256), (17, 512), (19, 512),
               (21, 512), (24, 512), (26, 512), (28, 512))


def vgg16_state(seed: int = VGG16_SEED) -> Dict[str, np.ndarray]:
    """torchvision-named VGG16 state dict (``features.N.weight``, ``classifier.N.weight``); fc1
    alone is 102.8 M values, drawn in float32 in about a second."""
    rng = np.random.default_rng(seed)
    state, cin = {}, 3
    for index, cout in VGG16_CONVS:
        state[f"features.{index}.weight"] = _normal(rng, (cout, cin, 3, 3), np.sqrt(2.0 / (9 * cin)))
        state[f"features.{index}.bias"] = _normal(rng, cout, 0.05)
        cin = cout
    fcs = ((0, 4096, 512 * 7 * 7, 2.0), (3, 4096, 4096, 2.0), (6, 1000, 4096, 1.0))  # index, out, in, He gain
    for index, fan_out, fan_in, gain in fcs:
        state[f"classifier.{index}.weight"] = _normal(rng, (fan_out, fan_in), np.sqrt(gain / fan_in))
        state[f"classifier.{index}.bias"] = _normal(rng, fan_out, 0.05)
    return state


LPIPS_CHANNELS = (64, 128, 256, 512, 512)


def lpips_state(seed: int = LPIPS_SEED) -> Dict[str, np.ndarray]:
    """The lpips package's linear layers (``lin{k}.model.1.weight``, ``[1, C, 1, 1]``), non-negative
    as trained ones are."""
    rng = np.random.default_rng(seed)
    return {f"lin{k}.model.1.weight": rng.uniform(0.0, 1.0, (1, c, 1, 1)).astype(np.float32)
            for k, c in enumerate(LPIPS_CHANNELS)}
