"""Fine-tuning: a new training run that starts from pretrained networks, as stylegan2-ada's
``--resume=<network pickle>`` does (Karras et al. 2020, section 5: transfer learning).

A source is an official network pickle (the StyleGAN2 TF1 release or stylegan2-ada-pytorch, read
by :mod:`tf_stylegan2.official`), or a generator ``.keras`` file together with a discriminator
``.keras`` file (``--resume=G.keras --resume_d=D.keras``, e.g. as ``runners/convert_official.py``
writes them). The networks' architecture is the source's; G, D and G_ema take its weights (a
``.keras`` generator gives both G and G_ema, a pickle without G its G_ema); optimizers, counters,
the path-length mean and the augmentation probability start fresh, as in stylegan2-ada.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Dict, Optional

import keras

from tf_stylegan2 import checkpoint, official
from tf_stylegan2.data import DatasetInfo
from tf_stylegan2.fileio import UserError, sha256_file

KERAS = "keras"


@dataclasses.dataclass
class Pretrained:
    """Networks to start a run from (float32 Keras models) and where they came from."""

    path: str
    format: str  # official.read's format, or 'keras'
    G: keras.Model
    D: keras.Model
    G_ema: keras.Model
    d_path: Optional[str] = None  # the discriminator's file, for a .keras pair

    @property
    def configs(self) -> tuple:
        """The architecture: (GeneratorConfig, DiscriminatorConfig)."""
        return self.G_ema.config, self.D.config

    def record(self) -> Dict[str, Any]:
        """What the run directory records about its start (training_options.json)."""
        files = [self.path] + ([self.d_path] if self.d_path else [])
        return {"format": self.format, "files": {p: sha256_file(p) for p in files}}


def is_pretrained(path: str) -> bool:
    """Whether ``--resume=path`` names networks to fine-tune (a file) rather than a run to continue."""
    return os.path.isfile(path)


def read(path: str, d_path: Optional[str] = None) -> Pretrained:
    """Reads a network pickle, or a generator .keras file and ``d_path``'s discriminator."""
    path = os.path.abspath(path)
    if path.endswith(".keras"):
        if not d_path:
            raise UserError(f"--resume={path} is a generator; fine-tuning needs its discriminator too "
                            "(--resume_d=D.keras)")
        G = checkpoint.load_generator(path)
        D = checkpoint.load_discriminator(os.path.abspath(d_path))
        return Pretrained(path, KERAS, G, D, G, os.path.abspath(d_path))
    if d_path:
        raise UserError(f"--resume_d goes with a generator .keras file, not with {path}")
    nets = official.read(path)
    if "D" not in nets.networks:
        raise UserError(f"{path} holds no discriminator 'D': fine-tuning needs one (a full training snapshot)")
    built = {name: state.build() for name, state in nets.networks.items()}
    return Pretrained(path, nets.format, built.get("G", built["G_ema"]), built["D"], built["G_ema"])


def check_fits(pretrained: Pretrained, info: DatasetInfo, cond: bool) -> None:
    """The source's networks must take the dataset's images and labels (a UserError names both)."""
    G, D = pretrained.configs
    where = f"--resume={pretrained.path}"
    if G.img_resolution != info.resolution or D.img_resolution != info.resolution:
        raise UserError(f"{where} makes {G.img_resolution}x{G.img_resolution} images, but dataset {info.path} "
                        f"holds {info.resolution}x{info.resolution}")
    if G.img_channels != info.channels or D.img_channels != info.channels:
        raise UserError(f"{where} makes {G.img_channels}-channel images, but dataset {info.path} holds "
                        f"{info.channels}-channel images")
    labels = info.c_dim if cond else 0
    if G.c_dim != labels or D.c_dim != labels:
        given = f"{labels} labels" if labels else "no labels" + ("" if cond else " (no --cond)")
        raise UserError(f"{where} takes {G.c_dim} labels, but the run gives it {given} from dataset {info.path}")


def copy_into(state, pretrained: Pretrained) -> None:
    """Sets the state's G, D and G_ema to the source's weights (same architecture, any dtype policy)."""
    for target, source in ((state.G, pretrained.G), (state.D, pretrained.D), (state.G_ema, pretrained.G_ema)):
        target.set_weights(source.get_weights())

