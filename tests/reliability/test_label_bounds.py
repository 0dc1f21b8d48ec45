"""dataset.json labels: bounded before anything is allocated (a class index sized a dense one-hot
matrix: label 50000 took 10 GB), refused in one line naming the file, and a file labelled twice
is an error rather than "the last one wins"."""

import json
import os
import tracemalloc

import numpy as np
import pytest
from PIL import Image
from reliability_helpers import assert_one_line, run_runner

from tf_stylegan2.data import open_dataset
from tf_stylegan2.data.convert import ConvertOptions, convert_dataset
from tf_stylegan2.data.labels import MAX_C_DIM, label_dim, label_matrix
from tf_stylegan2.fileio import UserError

NAMES = [f"img{i}.png" for i in range(8)]


def labelled_folder(path, labels, entries=None):
    os.makedirs(path, exist_ok=True)
    for i, name in enumerate(NAMES):
        Image.fromarray(np.full((8, 8, 3), i * 30, np.uint8)).save(os.path.join(path, name))
    with open(os.path.join(path, "dataset.json"), "w") as f:
        json.dump({"labels": entries if entries is not None else [[n, v] for n, v in zip(NAMES, labels)]}, f)
    return str(path)


def refusal(call, peak_bytes=8 << 20):
    """The UserError ``call()`` raises, checked to be one line and to come within ``peak_bytes`` of
    traced allocations (numpy's included)."""
    tracemalloc.start()
    try:
        with pytest.raises(UserError) as e:
            call()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < peak_bytes, peak
    message = str(e.value)
    assert "\n" not in message
    return message


CLASS_LABELS = {  # the label of img3.png (the others are class 0) -> what the error says
    "50000": (50000, f"the label of img3.png is class 50000; class labels must lie in [0, {MAX_C_DIM})"),
    "1e9": (10**9, "the label of img3.png is class 1000000000;"),
    "1e30": (10**30, f"is class {10**30};"),
    "negative": (-1, "the label of img3.png is -1, a negative class label"),
    "float": (1.5, "the label of img3.png is 1.5; labels must all be class indices"),
    "bool": (True, "the label of img3.png is true; labels must all be class indices"),
    "string": ("3", 'the label of img3.png is "3"; labels must all be class indices'),
    "vector": ([1, 2], "the label of img3.png is [1, 2]; labels must all be class indices"),
}


@pytest.mark.parametrize("case", sorted(CLASS_LABELS))
def test_bad_class_labels_are_refused_when_training_opens_and_when_converting(tmp_path, case):
    value, phrase = CLASS_LABELS[case]
    folder = labelled_folder(tmp_path / "data", [value if i == 3 else 0 for i in range(8)])
    message = refusal(lambda: open_dataset(folder))
    assert message.startswith(os.path.join(folder, "dataset.json") + ": ") and phrase in message, message
    dest = tmp_path / "out.zip"
    assert phrase in refusal(lambda: convert_dataset(folder, str(dest), ConvertOptions(transform="none"), log=lambda line: None))
    assert not dest.exists()


VECTOR_LABELS = {  # img3's vector (the others are [0.5, 0.5]) -> what the error says
    "nan": ([float("nan"), 0.0], "the label of img3.png holds a number that is not finite in float32"),
    "float32 overflow": ([1e39, 0.0], "not finite in float32"),
    "huge int": ([10**400, 0], "not finite in float32"),
    "other length": ([1.0, 2.0, 3.0], "the label of img3.png is [1.0, 2.0, 3.0]; labels must all be"),
    "bool": ([True, 0.5], "the label of img3.png is [true, 0.5]; labels must all be"),
}


@pytest.mark.parametrize("case", sorted(VECTOR_LABELS))
def test_bad_vector_labels_are_refused(tmp_path, case):
    value, phrase = VECTOR_LABELS[case]
    folder = labelled_folder(tmp_path / "data", [value if i == 3 else [0.5, 0.5] for i in range(8)])
    assert phrase in refusal(lambda: open_dataset(folder))


def test_label_vectors_are_bounded_in_length():
    assert label_dim([[0.0] * MAX_C_DIM] * 2, "d") == MAX_C_DIM
    for length in (0, MAX_C_DIM + 1):
        message = refusal(lambda: label_dim([[0.0] * length] * 2, "d.json", ["a.png", "b.png"]))
        assert f"the label of a.png is a vector of {length} numbers; label vectors hold 1 to {MAX_C_DIM}" in message


def test_labels_within_the_bound_make_one_hot_rows():
    labels = [2, 0, MAX_C_DIM - 1, 2]
    np.testing.assert_array_equal(label_matrix(labels, "d"), np.eye(MAX_C_DIM, dtype=np.float32)[labels])
    vectors = [[0.25, -1.0], [3.0, 1e30]]
    np.testing.assert_array_equal(label_matrix(vectors, "d"), np.float32(vectors))


def test_a_file_labelled_twice_is_an_error(tmp_path):
    folder = labelled_folder(tmp_path / "data", None, [[n, 0] for n in NAMES] + [["img0.png", 1]])
    message = refusal(lambda: open_dataset(folder))
    assert message == f"{os.path.join(folder, 'dataset.json')} labels img0.png twice"
    convert = lambda: convert_dataset(folder, str(tmp_path / "o"), ConvertOptions(transform="none"), log=lambda line: None)  # noqa: E731
    assert "labels img0.png twice" in refusal(convert)


def test_subfolder_classes_are_bounded_too(tmp_path, monkeypatch):
    from tf_stylegan2.data import labels

    monkeypatch.setattr(labels, "MAX_C_DIM", 2)
    for k in range(3):
        os.makedirs(tmp_path / "src" / f"class{k}")
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "src" / f"class{k}" / "a.png")
    message = refusal(lambda: convert_dataset(str(tmp_path / "src"), str(tmp_path / "o"),
                                              ConvertOptions(transform="none", labels="subfolders"), log=lambda line: None))
    assert "the label of class2/a.png is class 2; class labels must lie in [0, 2)" in message


def test_dataset_tool_refuses_a_huge_class_in_one_line(tmp_path):
    folder = labelled_folder(tmp_path / "data", [50000 if i == 3 else 0 for i in range(8)])
    r = run_runner("dataset_tool", f"--source={folder}", f"--dest={tmp_path / 'out.zip'}")
    assert_one_line(r, "dataset_tool", "the label of img3.png is class 50000")
    assert not (tmp_path / "out.zip").exists()
