"""Project an image into a generator's W space (stylegan2-ada-pytorch's projector.py).

  python -m runners.projector --network=run/ --target=face.png --vgg16=vgg16.pt --outdir=out/
  python -m runners.projector --network=G.keras --target=x.jpg --vgg16=vgg16-397923af.pth \
      --lpips=vgg.pth --steps=500 --w_plus --save_video --outdir=out/

Writes target.png, proj.png, comparison.png, projected_w.npz (render it again with
runners.generate --projected_w), projection.json (final LPIPS and PSNR) and, with --save_video,
proj.mp4 (imageio-ffmpeg installed) or proj.gif.
"""

from __future__ import annotations

import sys

from absl import flags

from runners import cli

flags.DEFINE_string("network", None, "Generator: a .keras file, a training run directory or a checkpoint.",
                    required=True)
flags.DEFINE_string("target", None, "Image file to project (centre-cropped, resized to G's resolution).",
                    required=True)
flags.DEFINE_string("outdir", None, "Directory for the outputs.", required=True)
flags.DEFINE_string("vgg16", None, "VGG16 weights for LPIPS (as runners.calc_metrics --vgg16).", required=True)
flags.DEFINE_string("lpips", None, "LPIPS linear-layer weights, when --vgg16 does not hold them "
                    "(as runners.calc_metrics --lpips).")
flags.DEFINE_integer("steps", 1000, "Optimisation steps.")
flags.DEFINE_integer("seed", 303, "Seed of the initial noise maps and the w jitter.")
flags.DEFINE_boolean("w_plus", False, "Optimise one w per layer (W+) instead of one w for all.")
flags.DEFINE_boolean("save_video", False, "Also write the optimisation as a video (MP4 or GIF).")
flags.DEFINE_integer("class_idx", None, "Class label for a conditional generator.")
flags.DEFINE_alias("class", "class_idx")
FLAGS = flags.FLAGS


def main() -> None:
    import dataclasses

    from tf_stylegan2.checkpoint import load_generator
    from tf_stylegan2.metrics.detectors import load_vgg16
    from tf_stylegan2.progress import Progress
    from tf_stylegan2.projector import ProjectorConfig, load_target, project, save_projection
    from tf_stylegan2.sampling import labels

    config = ProjectorConfig(num_steps=FLAGS.steps, w_plus=FLAGS.w_plus)
    G = load_generator(FLAGS.network)
    c = labels(G, FLAGS.class_idx, 1)
    target = load_target(FLAGS.target, G.img_resolution, G.img_channels)
    vgg16 = load_vgg16(FLAGS.vgg16, FLAGS.lpips)
    print(f"Projecting {FLAGS.target} into {FLAGS.network} ({G.img_resolution}px, "
          f"{'W+' if FLAGS.w_plus else 'W'}, {FLAGS.steps} steps)")
    last = {}
    progress = Progress("projection", FLAGS.steps, unit="step", interval=5.0,
                        log=lambda line: print(f"{line}  loss {last['loss']:.4f}  LPIPS {last['lpips']:.4f}",
                                               file=sys.stderr, flush=True))

    def on_step(step: int, loss: float, dist: float) -> None:
        last.update(loss=loss, lpips=dist)
        progress.update(step)

    projection = project(G, target, vgg16.lpips_features, config, seed=FLAGS.seed,
                         c=None if c is None else c[0], on_step=on_step)
    info = {"network": FLAGS.network, "target": FLAGS.target, "seed": FLAGS.seed, "class_idx": FLAGS.class_idx,
            "config": dataclasses.asdict(config), "vgg16": dict(vgg16.identity)}
    summary = save_projection(FLAGS.outdir, G, target, projection, vgg16.lpips_features, info, FLAGS.save_video)
    print(f"LPIPS {summary['lpips']:.4f}  PSNR {summary['psnr']:.2f} dB  "
          f"({projection.seconds_per_step:.3f} s/step) -> {FLAGS.outdir}")


if __name__ == "__main__":
    cli.run(main)
