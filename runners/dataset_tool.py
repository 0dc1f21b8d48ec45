"""Convert a folder or zip of images into the training format (a folder or zip of PNGs + dataset.json).

  python -m runners.dataset_tool --source=photos/ --dest=data/photos256.zip --resolution=256
  python -m runners.dataset_tool --source=pets/ --dest=data/pets64 --resolution=64 \\
      --labels=subfolders --convert=grayscale,alpha --grid=pets64.png
  python -m runners.dataset_tool --source=builtin:shapes32 --dest=data/shapes32.zip

Images that need more than the chosen crop/resize (grayscale, transparency, other pixel modes,
too small or wrongly sized, corrupt) stop the tool with a one-line error naming the file unless
--convert (or --skip_corrupt) allows it; each conversion is reported. The destination appears only
when complete, and an existing one is replaced only with --overwrite. See docs/DATA.md.
"""

from __future__ import annotations

from absl import flags

from runners import cli

flags.DEFINE_string("source", None, "Folder or .zip of images, or builtin:<name>.", required=True)
flags.DEFINE_string("dest", None, "Output: a folder, or a .zip file.", required=True)
flags.DEFINE_integer("resolution", None, "Output size (power of two); needed unless --transform=none.")
flags.DEFINE_enum("transform", None, ["center-crop", "center-crop-wide", "none"],
                  "center-crop: largest centred square; center-crop-wide: full width, wide images "
                  "letterboxed between black bars; none: images must already have the size. "
                  "Default: center-crop with --resolution, none without.")
flags.DEFINE_enum("channels", "3", ["1", "3"], "Output channels: 3 (RGB) or 1 (grayscale).")
flags.DEFINE_list("convert", [], "Problem kinds to convert instead of failing: grayscale, alpha, mode, "
                  "size, or all.")
flags.DEFINE_enum("background", "black", ["black", "white"], "What transparent pixels become (--convert=alpha).")
flags.DEFINE_enum("labels", "auto", ["auto", "json", "subfolders", "none"],
                  "Class labels: auto (the source's dataset.json if any), json (require it), subfolders "
                  "(one class per top-level folder, sorted by name), none.")
flags.DEFINE_boolean("skip_corrupt", False, "Skip unreadable images (each is reported) instead of failing.")
flags.DEFINE_integer("max_images", None, "Convert only the first N images (sorted by path).")
flags.DEFINE_boolean("overwrite", False, "Replace an existing destination.")
flags.DEFINE_string("grid", None, "Also write a PNG grid of up to 64 converted images (one row per class "
                    "when labelled) to this path.")
FLAGS = flags.FLAGS


def main() -> None:
    from tf_stylegan2.data import dataset_grid, open_dataset
    from tf_stylegan2.data.convert import PROBLEMS, ConvertOptions, convert_dataset
    from tf_stylegan2.images import save_png

    kinds = frozenset(PROBLEMS if "all" in FLAGS.convert else FLAGS.convert)
    options = ConvertOptions(
        resolution=FLAGS.resolution,
        transform=FLAGS.transform or ("center-crop" if FLAGS.resolution else "none"),
        channels=int(FLAGS.channels),
        convert=kinds,
        background=FLAGS.background,
        labels=FLAGS.labels,
        skip_corrupt=FLAGS.skip_corrupt,
        max_images=FLAGS.max_images,
    )
    report = convert_dataset(FLAGS.source, FLAGS.dest, options, overwrite=FLAGS.overwrite)
    print(f"{FLAGS.dest}: {report.summary()}")
    if FLAGS.grid:
        save_png(FLAGS.grid, dataset_grid(open_dataset(FLAGS.dest, max_cache_bytes=0)))
        print(f"grid -> {FLAGS.grid}")


if __name__ == "__main__":
    cli.run(main)
