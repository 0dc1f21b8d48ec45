"""A damaged member inside a dataset zip (bad CRC, bad deflate stream, an absurd declared size) is
the same one-line "corrupt image" error as a corrupt file in a folder: when training opens the
dataset, while it streams, and in dataset_tool, where --skip_corrupt skips it."""

import io
import os
import re
import struct
import types
import zipfile

import numpy as np
import pytest
from PIL import Image
from reliability_helpers import assert_one_line, run_runner

from tf_stylegan2.data import files, open_dataset
from tf_stylegan2.data.convert import ConvertOptions, convert_dataset
from tf_stylegan2.fileio import UserError
from tf_stylegan2.train.loop import _reports_stops

CORRUPT = re.compile(r"^(?P<where>.+): corrupt or unreadable image \(\w+: .+\)")
PIXELS = [np.random.RandomState(i).randint(0, 256, [64, 64, 3]).astype(np.uint8) for i in range(6)]
NAMES = [f"00000/img{i:08d}.png" for i in range(6)]
DAMAGED = NAMES[3]


def png(pixels) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", compress_level=0)
    return buffer.getvalue()


def damaged_zip(path, how):
    """A dataset zip of six 64x64 PNGs whose fourth member is damaged: 'crc' (a stored member, one
    byte of its pixel data flipped: the PNG header still reads), 'deflate' (a deflated member whose
    stream starts with an invalid block type)."""
    compression = zipfile.ZIP_STORED if how == "crc" else zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(path, "w", compression) as z:
        for name, pixels in zip(NAMES, PIXELS):
            z.writestr(name, png(pixels))
    with zipfile.ZipFile(path) as z:
        info = z.getinfo(DAMAGED)
    data = bytearray(open(path, "rb").read())
    name_len, extra_len = struct.unpack("<HH", data[info.header_offset + 26 : info.header_offset + 30])
    start = info.header_offset + 30 + name_len + extra_len  # the member's data
    if how == "crc":
        data[start + info.compress_size - 20] ^= 0xFF  # inside the IDAT chunk, before IEND
    else:
        data[start] = 0xFF  # BFINAL 1, BTYPE 11: a reserved block type
    open(path, "wb").write(bytes(data))
    return str(path)


@pytest.mark.parametrize("how", ["crc", "deflate"])
def test_a_damaged_member_is_a_corrupt_image_when_training_opens_the_zip(tmp_path, how):
    path = damaged_zip(tmp_path / "data.zip", how)
    with pytest.raises(UserError) as e:
        open_dataset(path)
    match = CORRUPT.match(str(e.value))
    assert match and match["where"] == f"{path}:{DAMAGED}", str(e.value)
    # The same message as an undecodable file in a folder.
    folder = tmp_path / "folder"
    os.makedirs(folder)
    (folder / "a.png").write_bytes(png(PIXELS[0])[:40])
    with pytest.raises(UserError) as e:
        open_dataset(str(folder))
    assert CORRUPT.match(str(e.value))["where"] == str(folder / "a.png")


def test_a_damaged_member_found_while_streaming_ends_training_in_one_line(tmp_path):
    """Streamed (too large to cache), the header passes at open and the bad CRC shows when the
    member is read: tf.data reports an OpError with a traceback, the training loop the one line."""
    dataset = open_dataset(damaged_zip(tmp_path / "data.zip", "crc"), max_cache_bytes=0)

    def read_everything(run):
        for _ in iter(run.dataset.tf_dataset(6, use_labels=False, mirror=False, seed=0, shuffle=False)):
            pass

    run = types.SimpleNamespace(is_chief=False, run_dir=None, dataset=dataset)
    with pytest.raises(UserError) as e:
        _reports_stops(read_everything)(run)
    assert CORRUPT.match(str(e.value))["where"] == f"{tmp_path / 'data.zip'}:{DAMAGED}", str(e.value)


def test_a_member_declaring_too_many_bytes_is_refused_before_inflating(tmp_path, monkeypatch):
    path = damaged_zip(tmp_path / "data.zip", "crc")
    size = len(png(PIXELS[0]))
    monkeypatch.setattr(files, "MAX_MEMBER_BYTES", size - 1)
    with pytest.raises(UserError, match=rf"{NAMES[0]}: corrupt or unreadable image \(BadZipFile: it declares {size} "
                                        "bytes, more than"):
        open_dataset(path)


@pytest.mark.parametrize("how", ["crc", "deflate"])
def test_dataset_tool_skips_a_damaged_member_with_skip_corrupt(tmp_path, how):
    source = damaged_zip(tmp_path / "data.zip", how)
    dest = tmp_path / "out.zip"
    options = ConvertOptions(transform="none")
    with pytest.raises(UserError, match=rf"{re.escape(source)}:{DAMAGED}: corrupt or unreadable image .*; pass "
                                        "--skip_corrupt to skip such files"):
        convert_dataset(source, str(dest), options, log=lambda line: None)
    assert not dest.exists()
    report = convert_dataset(source, str(dest), ConvertOptions(transform="none", skip_corrupt=True),
                             log=lambda line: None)
    assert report.skipped == [f"{source}:{DAMAGED}"] and report.num_images == 5
    converted = open_dataset(str(dest))
    np.testing.assert_array_equal(converted.images(range(5)), np.stack(PIXELS[:3] + PIXELS[4:]))


def test_dataset_tool_reports_a_damaged_member_in_one_line(tmp_path):
    source = damaged_zip(tmp_path / "data.zip", "crc")
    r = run_runner("dataset_tool", f"--source={source}", f"--dest={tmp_path / 'out.zip'}")
    assert_one_line(r, "dataset_tool", f"{source}:{DAMAGED}: corrupt or unreadable image (BadZipFile: Bad CRC-32")
    assert not (tmp_path / "out.zip").exists()
