"""Importing NVIDIA's official pretrained networks, without running code from their pickles.

Three formats are read, all with the restricted unpickler of :mod:`.safe_unpickle` (neither TF1,
torch nor NVIDIA's repositories are needed):

* the StyleGAN2 TF1 release: ``(G, D, Gs)`` of ``dnnlib.tflib.network.Network`` (:mod:`.tf1`);
* stylegan2-ada's TF release: the same tuple, of its own build functions (:mod:`.ada_tf`);
* stylegan2-ada-pytorch: ``{'G', 'D', 'G_ema', ...}`` of persistent torch modules (:mod:`.ada_pytorch`).

  nets = read("stylegan2-ffhq-config-f.pkl")      # {'G', 'D', 'G_ema'} -> NetworkState
  G = nets.networks["G_ema"].build()               # our Generator with NVIDIA's weights
  convert("network-snapshot.pkl", "G.keras", out_d="D.keras")

:func:`load_torch` reads the weights files of other networks (the evaluation feature networks) the
same way: ``torch.save`` files in both formats and ``torch.jit.save`` archives -> tensors by name.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Dict, Optional

from tf_stylegan2.fileio import UserError, atomic_path
from tf_stylegan2.official import ada_pytorch, ada_tf, safe_unpickle, tf1
from tf_stylegan2.official.safe_unpickle import TFNetwork, TorchFile, UnsafePickleError, load_torch
from tf_stylegan2.official.state import NetworkState

__all__ = ["OfficialNetworks", "NetworkState", "TorchFile", "UnsafePickleError", "convert", "load_torch", "read",
           "read_data"]


@dataclasses.dataclass
class OfficialNetworks:
    """What an official pickle holds: its format and its networks 'G_ema' (always), 'G' and 'D'."""

    format: str
    networks: Dict[str, NetworkState]


def read(path: str) -> OfficialNetworks:
    """Reads an official network pickle (any of the formats) into configs and weights; builds nothing."""
    if not os.path.isfile(path):
        raise UserError(f"no such file: {path}")
    with open(path, "rb") as f:
        head = f.read(4)
        if head.startswith(b"PK\x03\x04"):
            raise UserError(f"{path} is a zip archive (a torch.save or .keras file?), not a network pickle")
        if not head.startswith(b"\x80"):
            raise UserError(f"{path} is not a network pickle (no pickle protocol header)")
        f.seek(0)
        return read_data(safe_unpickle.load(f, path), path)


def read_data(data: Any, what: str = "the pickle") -> OfficialNetworks:
    """The networks in an unpickled official pickle (what :func:`read` does after unpickling)."""
    if ada_tf.is_ada_tf_pickle(data):
        return OfficialNetworks(ada_tf.FORMAT, ada_tf.read_ada_tf(data))
    if tf1.is_tf1_pickle(data):
        return OfficialNetworks(tf1.FORMAT, tf1.read_tf1(data))
    if ada_pytorch.is_ada_pickle(data):
        return OfficialNetworks(ada_pytorch.FORMAT, ada_pytorch.read_ada(data))
    if isinstance(data, int) and data == safe_unpickle.TORCH_LEGACY_MAGIC:
        raise UserError(f"{what} is a torch.save file, not a network pickle")
    if isinstance(data, tuple) and any(isinstance(n, TFNetwork) for n in data):
        count = sum(isinstance(n, TFNetwork) for n in data)
        raise UserError(f"{what} holds {count} TF networks in a tuple of {len(data)} items; a StyleGAN2 or "
                        "stylegan2-ada TF pickle holds three: (G, D, Gs)")
    raise UserError(
        f"{what} holds a {type(data).__name__}, not NVIDIA networks: expected a StyleGAN2 or stylegan2-ada TF "
        "pickle (a tuple G, D, Gs) or a stylegan2-ada-pytorch pickle (a dict with G, D, G_ema)"
    )


def convert(
    path: str,
    out: str,
    out_g: Optional[str] = None,
    out_d: Optional[str] = None,
    overwrite: bool = False,
) -> OfficialNetworks:
    """Writes the pickle's G_ema to ``out`` (and its G to ``out_g``, D to ``out_d``) as .keras files.

    Every output is checked before anything is read and written atomically after every network
    has been built, so bad input leaves no file behind.
    """
    outputs = {"G_ema": out, "G": out_g, "D": out_d}
    outputs = {k: v for k, v in outputs.items() if v}
    for p in outputs.values():
        if not p.endswith(".keras"):
            raise UserError(f"output {p} must end in .keras")
        if os.path.exists(p) and not overwrite:
            raise UserError(f"{p} already exists (use --overwrite / overwrite=True to replace it)")
    if len(set(map(os.path.abspath, outputs.values()))) != len(outputs):
        raise UserError("the output paths must differ")
    nets = read(path)
    for key in outputs:
        if key not in nets.networks:
            raise UserError(f"{path} holds no network '{key}'")
    models = {key: nets.networks[key].build() for key in outputs}
    for key, p in outputs.items():
        with atomic_path(p, overwrite=overwrite) as tmp:
            models[key].save(tmp)
    return nets
