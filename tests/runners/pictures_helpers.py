"""Running the picture runners in a subprocess, and the generator files they are given."""

import dataclasses
import json
import os
import subprocess
import sys

import numpy as np

from tf_stylegan2 import Generator, GeneratorConfig, MappingConfig, checkpoint
from tf_stylegan2.config import resolve

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run(runner: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", f"runners.{runner}", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


def assert_one_line_error(r: subprocess.CompletedProcess, runner: str, message: str) -> None:
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{runner}.py: error:") and message in lines[0], r.stderr


def tiny_generator(resolution: int = 8, c_dim: int = 0) -> Generator:
    """A random generator (4 ws at 8 px, w_dim 6); w_avg moved off zero so that truncation changes images."""
    G = Generator(GeneratorConfig(img_resolution=resolution, z_dim=6, w_dim=6, c_dim=c_dim, channel_base=64,
                                  channel_max=8, mapping=MappingConfig(num_layers=2)))
    G.mapping.w_avg.assign(np.linspace(-0.5, 0.5, 6).astype(np.float32))
    return G


def fake_run_dir(path, G: Generator) -> str:
    """A training run directory as runners.train leaves it: options, one snapshot, one checkpoint."""
    os.makedirs(path)
    cfg = dataclasses.replace(resolve("small", G.img_resolution), G=G.config)
    with open(os.path.join(path, checkpoint.RUN_OPTIONS), "w") as f:
        json.dump({"config": cfg.to_dict()}, f)
    G.save(os.path.join(path, "network-snapshot-000000016.keras"))
    checkpoint.save({"G_ema": G.weights}, str(path), "ckpt-000000016")
    return str(path)
