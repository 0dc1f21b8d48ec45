"""Convert NVIDIA's pretrained StyleGAN2 networks to .keras files, without running code from the pickle.

  python -m runners.convert_official --pkl=stylegan2-ffhq-config-f.pkl --out=ffhq.keras
  python -m runners.convert_official --pkl=network-snapshot-025000.pkl --out=G_ema.keras --out_d=D.keras

Reads the pickles of the StyleGAN2 TF1 release and of stylegan2-ada (TF and PyTorch); needs neither TensorFlow 1,
PyTorch nor NVIDIA's code. --out gets the averaged generator (G_ema / Gs), which is the one to
sample from; the result loads wherever a .keras generator is accepted (runners.generate, export).
"""

from __future__ import annotations

from absl import flags

from runners import cli

flags.DEFINE_string("pkl", None, "Official network pickle (StyleGAN2 TF1, stylegan2-ada TF or stylegan2-ada-pytorch).", required=True)
flags.DEFINE_string("out", None, "Output .keras file for the averaged generator G_ema.", required=True)
flags.DEFINE_string("out_g", None, "Also write the training (non-averaged) generator G to this .keras file.")
flags.DEFINE_string("out_d", None, "Also write the discriminator D to this .keras file.")
flags.DEFINE_bool("overwrite", False, "Replace existing output files.")
FLAGS = flags.FLAGS


def main() -> None:
    from tf_stylegan2 import official

    nets = official.convert(FLAGS.pkl, FLAGS.out, out_g=FLAGS.out_g, out_d=FLAGS.out_d, overwrite=FLAGS.overwrite)
    g = nets.networks["G_ema"].config
    print(
        f"{nets.format} pickle {FLAGS.pkl}: {g.img_resolution}x{g.img_resolution}x{g.img_channels} {g.architecture} "
        f"generator, z_dim={g.z_dim}, w_dim={g.w_dim}, c_dim={g.c_dim}"
    )
    for name, path in (("G_ema", FLAGS.out), ("G", FLAGS.out_g), ("D", FLAGS.out_d)):
        if path:
            print(f"  {name} -> {path}")


if __name__ == "__main__":
    cli.run(main)
