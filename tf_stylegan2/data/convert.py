"""Converting a folder or zip of arbitrary images into the training format (runners/dataset_tool.py).

Output: a folder or zip (chosen by the destination's extension) in stylegan2-ada's layout, PNGs
named ``NNNNN/imgNNNNNNNN.png`` (1000 per subfolder) plus ``dataset.json``
(``{"labels": [[file, label], ...] | null}``; ``"class_names"`` is added for subfolder labels).

Images that are not already what the dataset needs are *problems* of a named kind: ``grayscale``
(a grayscale image in an RGB dataset), ``alpha`` (transparency), ``mode`` (palette, CMYK, 16-bit,
colour into a grayscale dataset...), ``size`` (would need upscaling or stretching), ``corrupt``
(unreadable). Each is converted only if its kind is in ``ConvertOptions.convert`` (``corrupt``:
skipped only with ``skip_corrupt``), and is then reported; otherwise the conversion fails with
a one-line UserError naming the file. The destination is written under a temporary name and
renamed when complete, so a failure leaves nothing behind and never touches an existing dataset.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
import zipfile
from typing import Callable, Dict, FrozenSet, List, Optional, Tuple

import numpy as np
from PIL import Image, ImageOps

from layers.rules import valid_resolution
from tf_stylegan2 import datasets
from tf_stylegan2.data.decode import decode_image
from tf_stylegan2.data.files import LABELS_FILE, FileSource
from tf_stylegan2.data.labels import align_labels, label_matrix
from tf_stylegan2.fileio import UserError, atomic_path
from tf_stylegan2.images import encode_png

PROBLEMS = ("grayscale", "alpha", "mode", "size")  # kinds that can be converted
TRANSFORMS = ("center-crop", "center-crop-wide", "none")
LABEL_SOURCES = ("auto", "json", "subfolders", "none")
GRAY_MODES = ("1", "L", "I", "I;16", "I;16L", "I;16B", "I;16N", "F")
ALPHA_MODES = ("RGBA", "RGBa", "LA", "La", "PA")
REPORTED_PER_KIND = 10  # conversions listed one per line; the rest are counted in the summary


@dataclasses.dataclass(frozen=True)
class ConvertOptions:
    """How to convert (the flags of runners/dataset_tool.py); invalid values raise UserError."""

    resolution: Optional[int] = None  # output size; None: keep the size (transform 'none' only)
    transform: str = "center-crop"  # center-crop | center-crop-wide (letterbox) | none
    channels: int = 3  # 3 (RGB) or 1 (grayscale)
    convert: FrozenSet[str] = frozenset()  # problem kinds to convert instead of failing
    background: str = "black"  # what transparent pixels become: black | white
    labels: str = "auto"  # auto (dataset.json if present) | json | subfolders | none
    skip_corrupt: bool = False  # skip (and report) unreadable images instead of failing
    max_images: Optional[int] = None  # convert only the first N source images (sorted by name)

    def __post_init__(self):
        if self.transform not in TRANSFORMS:
            raise UserError(f"unknown transform {self.transform!r}; expected one of {', '.join(TRANSFORMS)}")
        if self.labels not in LABEL_SOURCES:
            raise UserError(f"unknown label source {self.labels!r}; expected one of {', '.join(LABEL_SOURCES)}")
        unknown = set(self.convert) - set(PROBLEMS)
        if unknown:
            raise UserError(f"unknown problem kind(s) {', '.join(sorted(unknown))}; expected {', '.join(PROBLEMS)}")
        if self.channels not in (1, 3):
            raise UserError(f"channels must be 1 or 3, got {self.channels}")
        if self.background not in ("black", "white"):
            raise UserError(f"background must be black or white, got {self.background!r}")
        r = self.resolution
        if r is not None and not valid_resolution(r):
            raise UserError(f"resolution must be a power of two >= 4, got {r}")
        if r is None and self.transform != "none":
            raise UserError(f"transform {self.transform} needs a resolution")
        if self.max_images is not None and self.max_images < 1:
            raise UserError(f"max_images must be >= 1, got {self.max_images}")


@dataclasses.dataclass
class ConvertReport:
    """What a conversion wrote and which files it converted or skipped."""

    num_images: int
    resolution: int
    channels: int
    c_dim: int
    converted: Dict[str, List[str]]  # problem kind -> files converted
    skipped: List[str]  # corrupt files skipped (skip_corrupt)

    def summary(self) -> str:
        parts = [f"{kind} {len(files)}" for kind, files in self.converted.items() if files]
        return (
            f"{self.num_images} images {self.resolution}x{self.resolution}x{self.channels}, c_dim {self.c_dim}; "
            f"converted: {', '.join(parts) or 'none'}; skipped corrupt: {len(self.skipped)}"
        )


class _Item:
    """One source image: how messages name it, a loader and its label (None without labels)."""

    def __init__(self, where: str, load: Callable[[], Image.Image], label):
        self.where, self.load, self.label = where, load, label


def _items(source: str, options: ConvertOptions) -> Tuple[List[_Item], Optional[List[str]]]:
    """The source's images in order, with labels chosen by ``options.labels``, and class names."""
    if datasets.is_builtin(source):
        _, d = datasets.load_path(source)
        if options.labels == "subfolders":
            raise UserError(f"{source} has no subfolders; use labels auto, json or none")
        use = options.labels != "none"
        items = [
            _Item(f"{source}[{i}]", lambda i=i: Image.fromarray(d.images[i]), int(d.labels[i]) if use else None)
            for i in range(len(d.images))
        ]
        return items, list(d.class_names) if use else None

    files = FileSource(source)
    names = files.image_names
    if not names:
        raise UserError(f"{source} contains no images")
    labels, class_names = None, None
    if options.labels in ("auto", "json"):
        entries = files.json_labels()
        if entries is None and options.labels == "json":
            raise UserError(f"{source} has no labels in {LABELS_FILE} (labels=json)")
        labels = align_labels(entries, names, files.where(LABELS_FILE))
        if labels is not None:
            label_matrix(labels, files.where(LABELS_FILE))  # validates the values
    elif options.labels == "subfolders":
        top = [n.split("/", 1)[0] if "/" in n else None for n in names]
        if None in top:
            raise UserError(f"{files.where(names[top.index(None)])} is not in a class subfolder (labels=subfolders)")
        class_names = sorted(set(top))
        labels = [class_names.index(t) for t in top]

    def loader(name: str) -> Callable[[], Image.Image]:
        # Photos are stored sideways with an EXIF rotation: the converted image is upright.
        return lambda: ImageOps.exif_transpose(decode_image(files.read(name), files.where(name)))

    items = [_Item(files.where(n), loader(n), None if labels is None else labels[i]) for i, n in enumerate(names)]
    return items, class_names


class _Converter:
    """Applies the options to one image at a time and records what it converted."""

    def __init__(self, options: ConvertOptions, log: Callable[[str], None]):
        self.options = options
        self.log = log
        self.resolution = options.resolution
        self.converted: Dict[str, List[str]] = {kind: [] for kind in PROBLEMS}

    def _problem(self, kind: str, where: str, what: str, action: str) -> None:
        """Fails unless ``kind`` may be converted; otherwise records (and reports) the conversion."""
        if kind not in self.options.convert:
            raise UserError(f"{where}: {what}; pass --convert={kind} to {action}")
        done = self.converted[kind]
        done.append(where)
        if len(done) <= REPORTED_PER_KIND:
            self.log(f"  converted ({kind}) {where}: {what} -> {action}")
        if len(done) == REPORTED_PER_KIND:
            self.log(f"  (further '{kind}' conversions are counted in the summary)")

    def __call__(self, image: Image.Image, where: str) -> np.ndarray:
        image = self._pixel_format(image, where)
        return self._geometry(image, where).reshape(self.resolution, self.resolution, self.options.channels)

    def _pixel_format(self, image: Image.Image, where: str) -> Image.Image:
        """-> mode 'L' or 'RGB' as the options ask."""
        target = "RGB" if self.options.channels == 3 else "L"
        if image.mode in ALPHA_MODES or "transparency" in image.info:
            bg = self.options.background
            self._problem("alpha", where, f"has transparency (mode {image.mode})", f"composite it over {bg}")
            gray = image.mode in GRAY_MODES or image.mode in ("LA", "La")
            rgba = np.asarray(image.convert("LA" if gray else "RGBA"), dtype=np.float32) / 255.0
            color, alpha = rgba[..., :-1], rgba[..., -1:]
            fill = 1.0 if bg == "white" else 0.0
            flat = np.rint((color * alpha + fill * (1.0 - alpha)) * 255.0).astype(np.uint8)
            image = Image.fromarray(flat[..., 0] if gray else flat)
        if image.mode == target:
            return image
        if image.mode in GRAY_MODES:
            if target == "RGB":
                self._problem("grayscale", where, f"grayscale image (mode {image.mode}) in an RGB dataset",
                              "replicate it into RGB")
            else:
                self._problem("mode", where, f"mode {image.mode}", "convert it to 8-bit grayscale")
            return _to_8bit_gray(image).convert(target)
        self._problem("mode", where, f"mode {image.mode}", f"convert it to {target}")
        return image.convert("RGB").convert(target)

    def _geometry(self, image: Image.Image, where: str) -> np.ndarray:
        """Crop / resize / letterbox to resolution x resolution."""
        w, h = image.size
        if self.resolution is None:  # transform 'none' without a resolution: the first image decides
            if w != h or not valid_resolution(w):
                raise UserError(f"{where} is {w}x{h}: pass --resolution (the first image sets the size otherwise)")
            self.resolution = w
        r = self.resolution
        transform = self.options.transform
        if transform == "none":
            if (w, h) != (r, r):
                self._problem("size", where, f"{w}x{h}, not {r}x{r} (transform none)", f"resize it to {r}x{r}")
                image = image.resize((r, r), Image.LANCZOS)
            return np.asarray(image)
        side = min(w, h) if transform == "center-crop" else w
        if side < r:
            self._problem("size", where, f"{w}x{h} is smaller than {r} ({transform})", "upscale it")
        if transform == "center-crop" or h >= w:  # a tall image is centre-cropped in both transforms
            s = min(w, h)
            image = image.crop(((w - s) // 2, (h - s) // 2, (w + s) // 2, (h + s) // 2))
            return np.asarray(image.resize((r, r), Image.LANCZOS) if s != r else image)
        # center-crop-wide: keep the whole width; a wide image is letterboxed between black bars.
        band = max(1, int(np.round(r * h / w)))
        canvas = Image.new(image.mode, (r, r))
        canvas.paste(image.resize((r, band), Image.LANCZOS), (0, (r - band) // 2))
        return np.asarray(canvas)


def _to_8bit_gray(image: Image.Image) -> Image.Image:
    """Grayscale of any bit depth -> 'L' (16-bit values are scaled, not clipped)."""
    if image.mode.startswith("I"):
        values = np.asarray(image).astype(np.float64)
        return Image.fromarray(np.clip(np.rint(values / 257.0), 0, 255).astype(np.uint8))
    return image.convert("L")


def convert_dataset(
    source: str,
    dest: str,
    options: ConvertOptions,
    overwrite: bool = False,
    log: Callable[[str], None] = print,
) -> ConvertReport:
    """Converts ``source`` (folder, zip or ``builtin:<name>``) into the training format at ``dest``
    (``*.zip``: a zip, otherwise a folder). UserError for bad input; nothing is written then."""
    dest_abs = os.path.realpath(dest)
    if not datasets.is_builtin(source):
        src_abs = os.path.realpath(source)
        if dest_abs == src_abs or dest_abs.startswith(src_abs + os.sep):
            raise UserError(f"destination {dest} must not be the source or inside it")
    if os.path.exists(dest) and not overwrite:
        raise UserError(f"{dest} already exists (pass --overwrite to replace it)")
    items, class_names = _items(source, options)
    if options.max_images is not None:
        items = items[: options.max_images]
    convert = _Converter(options, log)
    skipped: List[str] = []
    labels: List[list] = []
    with atomic_path(dest, overwrite=overwrite) as tmp, _Writer(tmp, dest.lower().endswith(".zip")) as write:
        start = last = time.monotonic()
        for i, item in enumerate(items):
            try:
                image = item.load()
            except UserError as e:
                if not options.skip_corrupt:
                    raise UserError(f"{e}; pass --skip_corrupt to skip such files") from None
                skipped.append(item.where)
                log(f"  skipped corrupt {item.where}")
                continue
            pixels = convert(image, item.where)
            index = len(labels)
            name = f"{index // 1000:05d}/img{index:08d}.png"
            write(name, encode_png(pixels, compress_level=1))
            labels.append([name, item.label])
            if time.monotonic() - last > 2.0 or i + 1 == len(items):
                last = time.monotonic()
                rate = (i + 1) / max(last - start, 1e-9)
                log(f"{i + 1}/{len(items)} images, {rate:.0f} img/s, ETA {(len(items) - i - 1) / rate:.0f} s")
        if not labels:
            raise UserError(f"{source}: no image could be converted")
        has_labels = labels[0][1] is not None
        meta = {"labels": labels if has_labels else None}
        if has_labels and class_names is not None:
            meta["class_names"] = class_names
        write(LABELS_FILE, json.dumps(meta).encode("utf-8"))
    c_dim = label_matrix([x[1] for x in labels], dest).shape[1] if has_labels else 0
    return ConvertReport(len(labels), convert.resolution, options.channels, c_dim, convert.converted, skipped)


class _Writer:
    """Writes named files into a new folder or zip at ``path`` (a context manager that closes the zip)."""

    def __init__(self, path: str, as_zip: bool):
        self.path = path
        self.zip = zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) if as_zip else None
        if not as_zip:
            os.makedirs(path)

    def __call__(self, name: str, payload: bytes) -> None:
        if self.zip is not None:
            self.zip.writestr(name, payload)
            return
        target = os.path.join(self.path, *name.split("/"))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "wb") as f:
            f.write(payload)

    def __enter__(self) -> "_Writer":
        return self

    def __exit__(self, *exc) -> None:
        if self.zip is not None:
            self.zip.close()
