"""Fixtures of the export tests: one tiny generator, exported once per session by the runners."""

import pytest
from export_helpers import run_runner, tiny_generator

from tf_stylegan2.checkpoint import load_generator


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    """(Generator, path of its .keras file): 16x16, unconditional, non-zero noise strengths and w_avg."""
    path = tmp_path_factory.mktemp("tiny") / "G.keras"
    tiny_generator().save(path)
    return load_generator(str(path)), str(path)


@pytest.fixture(scope="session")
def served(tiny, tmp_path_factory):
    """The model base that ``runners.export_savedmodel`` wrote for the tiny generator (version 1)."""
    base = tmp_path_factory.mktemp("serving") / "stylegan2"
    r = run_runner("export_savedmodel", f"--network={tiny[1]}", f"--model_base={base}")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"{base}/1: SavedModel of a 16x16 unconditional generator"), r.stdout
    return str(base)


@pytest.fixture(scope="session")
def tflite_dir(tiny, tmp_path_factory):
    """The directory that ``runners.export_tflite`` wrote for the tiny generator (all 6 models)."""
    outdir = tmp_path_factory.mktemp("tflite")
    r = run_runner("export_tflite", f"--network={tiny[1]}", f"--outdir={outdir}")
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.strip().splitlines()) == 6, r.stdout
    return str(outdir)
