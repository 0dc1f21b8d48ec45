"""runners.generate end to end: PNGs written, bad input is one line and exit 2, nothing written."""

import os
import subprocess
import sys

import numpy as np
from PIL import Image

from tf_stylegan2 import Generator, GeneratorConfig, MappingConfig
from tf_stylegan2.sampling import generate_images

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run(*args):
    return subprocess.run([sys.executable, "-m", "runners.generate", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)


def test_generate_from_keras_file(tmp_path):
    g = Generator(GeneratorConfig(img_resolution=8, z_dim=4, w_dim=4, channel_base=32, channel_max=8,
                                  mapping=MappingConfig(num_layers=1)))
    g.save(tmp_path / "G.keras")
    out = tmp_path / "out"
    r = run(f"--network={tmp_path / 'G.keras'}", "--seeds=3,4", "--trunc=0.5", f"--outdir={out}")
    assert r.returncode == 0, r.stderr
    assert sorted(os.listdir(out)) == ["grid.png", "seed0003.png", "seed0004.png"]
    expected = generate_images(g, [3], truncation_psi=0.5)[0]
    np.testing.assert_array_equal(np.asarray(Image.open(out / "seed0003.png")), expected)
    assert np.asarray(Image.open(out / "grid.png")).shape == (8, 16, 3)


def test_bad_input_is_one_line_and_writes_nothing(tmp_path):
    out = tmp_path / "out"
    not_keras = tmp_path / "x.keras"
    not_keras.write_text("not a zip")
    for args, message in [
        (["--resolution=48"], "resolution must be a power of two >= 4, got 48"),
        (["--seeds=1-x"], "bad seed list"),
        ([f"--network={tmp_path / 'missing.keras'}"], "no such file"),
        ([f"--network={not_keras}"], "is not a .keras file"),
        (["--cfg=nope"], "unknown preset 'nope'"),
    ]:
        r = run(*args, f"--outdir={out}")
        assert r.returncode == 2, (args, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0] and lines[0].startswith("generate.py: error:"), r.stderr
        assert not out.exists()
