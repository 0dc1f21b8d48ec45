"""Writes tests/metrics/goldens/feature_networks.npz: outputs of the public reference
implementations of the feature networks, run on random weights (``random_weights.py``) and on a
few small images made from a seed. ``test_feature_networks.py`` builds our Keras networks from the
same weights and compares. Run once when the references or the weights change; CI never runs it.

References: torch-fidelity 0.4.0's ``FeatureExtractorInceptionV3`` (the TF1-compatible FID
Inception, features ``2048`` and ``logits_unbiased``) and ``FeatureExtractorVGG16`` (``fc2_relu``:
the features of NVIDIA's vgg16.pt), and lpips 0.1.4's ``LPIPS(net='vgg')``.

Needs its own environment (torch is never a dependency of the project)::

    python3 -m venv /tmp/goldens-venv
    /tmp/goldens-venv/bin/pip install torch==2.13.0 numpy scipy pillow tqdm
    /tmp/goldens-venv/bin/pip install --no-deps torch-fidelity==0.4.0 lpips==0.1.4
    /tmp/goldens-venv/bin/python tests/metrics/make_goldens.py

PyPI's torchvision does not import beside that torch build; torch-fidelity and lpips import it at
module level but use only VGG16's module layout and ``transforms.functional.normalize`` from it,
so this script installs a small stand-in module under the name ``torchvision``.
"""

from __future__ import annotations

import os
import sys
import tempfile
import types

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import random_weights  # noqa: E402

OUT = os.path.join(HERE, "goldens", "feature_networks.npz")
IMAGE_SEED = 8


def install_torchvision_stand_in() -> None:
    import torch
    from torch import nn

    class VGG(nn.Module):
        """torchvision's VGG16 module layout (features / avgpool / classifier)."""

        def __init__(self):
            super().__init__()
            layers, cin = [], 3
            for v in (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"):
                if v == "M":
                    layers.append(nn.MaxPool2d(2, 2))
                else:
                    layers += [nn.Conv2d(cin, v, 3, padding=1), nn.ReLU(inplace=True)]
                    cin = v
            self.features = nn.Sequential(*layers)
            self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
            self.classifier = nn.Sequential(
                nn.Linear(512 * 7 * 7, 4096), nn.ReLU(True), nn.Dropout(),
                nn.Linear(4096, 4096), nn.ReLU(True), nn.Dropout(), nn.Linear(4096, 1000),
            )

        def forward(self, x):
            return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))

    def vgg16(pretrained=False, weights=None, **kwargs):
        if pretrained or weights is not None:
            raise RuntimeError("the torchvision stand-in has no pretrained weights (nothing is downloaded)")
        return VGG()

    def normalize(x, mean, std, inplace=False):
        mean = torch.as_tensor(mean, dtype=x.dtype).view(-1, 1, 1)
        std = torch.as_tensor(std, dtype=x.dtype).view(-1, 1, 1)
        return (x - mean) / std

    tv = types.ModuleType("torchvision")
    tv.models = types.ModuleType("torchvision.models")
    tv.models.vgg16 = vgg16
    tv.datasets = types.ModuleType("torchvision.datasets")
    for name in ("CIFAR10", "CIFAR100", "STL10"):  # subclassed at import, never used here
        setattr(tv.datasets, name, type(name, (), {}))
    tv.transforms = types.ModuleType("torchvision.transforms")
    tv.transforms.functional = types.ModuleType("torchvision.transforms.functional")
    tv.transforms.functional.normalize = normalize
    for name, module in (("torchvision", tv), ("torchvision.models", tv.models), ("torchvision.datasets", tv.datasets),
                         ("torchvision.transforms", tv.transforms),
                         ("torchvision.transforms.functional", tv.transforms.functional)):
        sys.modules[name] = module


def images(rng: np.random.Generator, shape) -> np.ndarray:
    return rng.integers(0, 256, shape, dtype=np.uint8)


def main() -> None:
    install_torchvision_stand_in()
    import lpips
    import torch
    import torch_fidelity
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
    from torch_fidelity.feature_extractor_vgg16 import FeatureExtractorVGG16

    torch.set_num_threads(2)
    rng = np.random.default_rng(IMAGE_SEED)
    out = {
        "inception_images": images(rng, (2, 37, 53, 3)),  # non-square, resized to 299x299
        "vgg16_images": images(rng, (2, 40, 40, 3)),  # resized to 224x224
        # LPIPS compares at the images' own size (24x32: relu5_3 is 1x2), as x / 127.5 - 1. Pairs:
        # a slightly perturbed copy, a mirror image, an unrelated image.
        "lpips_a": images(rng, (3, 24, 32, 3)),
    }
    a = out["lpips_a"].astype(np.int16)
    out["lpips_b"] = np.stack([
        np.clip(a[0] + rng.integers(-8, 9, a[0].shape), 0, 255), a[1, :, ::-1], images(rng, a[2].shape)
    ]).astype(np.uint8)

    def nchw(x: np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))

    def saved(state) -> str:
        f = tempfile.NamedTemporaryFile(suffix=".pth", delete=False)
        f.close()
        torch.save({k: torch.from_numpy(v) for k, v in state.items()}, f.name)
        return f.name

    with torch.no_grad():
        path = saved(random_weights.inception_state())
        net = FeatureExtractorInceptionV3("inception-v3-compat", ["2048", "logits_unbiased"],
                                          feature_extractor_weights_path=path)
        os.unlink(path)
        pool3, logits = net(nchw(out["inception_images"]))
        out["inception_pool3"], out["inception_logits"] = pool3.numpy(), logits.numpy()
        del net

        vgg = random_weights.vgg16_state()
        path = saved(vgg)
        net = FeatureExtractorVGG16("vgg16", ["fc2_relu"], feature_extractor_weights_path=path)
        os.unlink(path)
        (out["vgg16_fc2"],) = [t.numpy() for t in net(nchw(out["vgg16_images"]))]
        del net

        net = lpips.LPIPS(net="vgg", pretrained=False, pnet_rand=True, verbose=False)
        state = net.state_dict()
        lins = random_weights.lpips_state()
        for key in state:
            if key.startswith("net.slice"):  # net.slice<s>.<features index>.<weight|bias>
                _, _, index, param = key.split(".")
                state[key] = torch.from_numpy(vgg[f"features.{index}.{param}"])
            elif key.startswith("lin"):  # lin<k>.model.1.weight, also listed as lins.<k>.model.1.weight
                state[key] = torch.from_numpy(lins[key.replace("lins.", "lin", 1)])
        net.load_state_dict(state)
        a, b = (nchw(out[k]).float() / 127.5 - 1 for k in ("lpips_a", "lpips_b"))
        out["lpips"] = net(a, b).reshape(-1).numpy()

    out["versions"] = np.array(f"torch {torch.__version__}, torch-fidelity {torch_fidelity.__version__}, lpips 0.1.4")
    for k, v in out.items():
        if v.dtype == np.float32:
            print(f"{k:18s} {list(v.shape)} mean {v.mean():.4f} std {v.std():.4f} zeros {np.mean(v == 0):.3f}")
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    np.savez_compressed(OUT, **out)
    print(f"wrote {OUT} ({os.path.getsize(OUT)} bytes)")


if __name__ == "__main__":
    main()
