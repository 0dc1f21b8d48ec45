"""Writes the .keras goldens of tests/tf_stylegan2/test_networks.py (run once; kept as written).

  python tests/tf_stylegan2/make_keras_goldens.py tests/tf_stylegan2/goldens

Two tiny conditional networks, G (skip) and D (resnet), with random non-zero weights, saved as
.keras files, and their outputs for fixed inputs in outputs.npz. The committed files were written
by the code of main at 5d8b15f, before the refactor of issue 13 (discriminator assembly, epilogue
renamed in Python); the test proves that files saved before a change still load to the same numbers.
"""

import os
import sys

sys.path.insert(0, os.getcwd())
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from tf_stylegan2 import Discriminator, DiscriminatorConfig, Generator, GeneratorConfig, MappingConfig  # noqa: E402

SMALL = dict(img_resolution=8, c_dim=2, channel_base=16, channel_max=4)


def networks():
    G = Generator(GeneratorConfig(z_dim=4, w_dim=4, mapping=MappingConfig(num_layers=1), **SMALL))
    D = Discriminator(DiscriminatorConfig(mbstd_group_size=2, mapping=MappingConfig(num_layers=1, w_avg_beta=None),
                                          **SMALL))
    return G, D


def inputs():
    rs = np.random.RandomState(0)
    return rs.randn(2, 4).astype(np.float32), np.eye(2, dtype=np.float32)[[0, 1]]


def main(outdir: str) -> None:
    G, D = networks()
    rs = np.random.RandomState(1)
    for model in (G, D):
        for v in model.weights:
            v.assign(rs.uniform(-1, 1, v.shape).astype(np.float32))
    z, c = inputs()
    img = G(tf.constant(z), tf.constant(c), truncation_psi=0.5, noise_mode="const").numpy()
    logits = D(tf.constant(img), tf.constant(c)).numpy()
    os.makedirs(outdir, exist_ok=True)
    G.save(os.path.join(outdir, "G.keras"))
    D.save(os.path.join(outdir, "D.keras"))
    np.savez(os.path.join(outdir, "outputs.npz"), z=z, c=c, img=img, logits=logits)


if __name__ == "__main__":
    main(sys.argv[1])
