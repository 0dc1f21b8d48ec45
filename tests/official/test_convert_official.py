"""runners.convert_official end to end: .keras outputs every consumer loads; bad input leaves nothing."""

import os
import pickle
import subprocess
import sys
import zipfile

import numpy as np
import nvidia_ref as ref
import official_pickles as op
import pytest
import tensorflow as tf

from tf_stylegan2 import official
from tf_stylegan2.checkpoint import load_discriminator, load_generator
from tf_stylegan2.fileio import UserError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
G_KW = dict(resolution=8, num_channels=3, label_size=0, fmap_base=64, fmap_max=16, latent_size=8, dlatent_size=8,
            mapping_layers=2, mapping_fmaps=8)
D_KW = dict(resolution=8, num_channels=3, label_size=0, fmap_base=64, fmap_max=16, mbstd_group_size=2)


def convert(*args):
    env = {k: v for k, v in os.environ.items() if k != "TF_STYLEGAN2_DEBUG"}
    return subprocess.run([sys.executable, "-m", "runners.convert_official", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def test_tf1_pickle_to_keras_files(tmp_path):
    data, v = op.tf1_pickle(G_KW, D_KW)
    (tmp_path / "in.pkl").write_bytes(data)
    out = {name: str(tmp_path / f"{name}.keras") for name in ("G_ema", "G", "D")}
    r = convert(f"--pkl={tmp_path / 'in.pkl'}", f"--out={out['G_ema']}", f"--out_g={out['G']}", f"--out_d={out['D']}")
    assert r.returncode == 0, r.stderr
    assert "StyleGAN2 TF1 pickle" in r.stdout and "8x8x3 skip generator" in r.stdout
    z = np.random.RandomState(0).randn(2, 8)
    for name, key in (("G_ema", "Gs"), ("G", "G")):
        G = load_generator(out[name])  # the loader every runner and the exporter use
        got = G(tf.constant(z, tf.float32), truncation_psi=0.7, noise_mode="const").numpy().transpose(0, 3, 1, 2)
        np.testing.assert_allclose(got, ref.tf1_generator(v[key], G_KW, z, 0.7), atol=1e-4, rtol=0)
    img = np.random.RandomState(1).randn(2, 3, 8, 8)
    D = load_discriminator(out["D"])
    got = D(tf.constant(img.transpose(0, 2, 3, 1), tf.float32)).numpy()
    np.testing.assert_allclose(got, ref.tf1_discriminator(v["D"], D_KW, img), atol=1e-5, rtol=0)
    assert sorted(os.listdir(tmp_path)) == ["D.keras", "G.keras", "G_ema.keras", "in.pkl"]


def test_ada_tf_pickle_to_keras_files(tmp_path):
    """A conditional stylegan2-ada TF pickle (as its cifar10.pkl: D 'orig', label embedding alone); its
    fmap_const (a 4x4 constant narrower than the 4x4 block) survives the .keras file."""
    g = dict(G_KW, label_size=2, num_fp16_res=4, conv_clamp=256, fmap_const=4)
    d = dict(D_KW, label_size=2, architecture="orig", num_fp16_res=4, conv_clamp=256)
    data, v = op.ada_tf_pickle(g, d)
    (tmp_path / "in.pkl").write_bytes(data)
    r = convert(f"--pkl={tmp_path / 'in.pkl'}", f"--out={tmp_path / 'G.keras'}", f"--out_d={tmp_path / 'D.keras'}")
    assert r.returncode == 0, r.stderr
    assert "stylegan2-ada TF pickle" in r.stdout and "c_dim=2" in r.stdout
    z, c = np.random.RandomState(0).randn(2, 8), np.eye(2)
    G = load_generator(str(tmp_path / "G.keras"))
    assert G.config.const_channels == 4
    got = G(tf.constant(z, tf.float32), tf.constant(c, tf.float32), noise_mode="const").numpy().transpose(0, 3, 1, 2)
    np.testing.assert_allclose(got, ref.ada_tf_generator(v["Gs"], g, z, c), atol=1e-4, rtol=0)
    img = np.random.RandomState(1).randn(2, 3, 8, 8)
    got = load_discriminator(str(tmp_path / "D.keras"))(tf.constant(img.transpose(0, 2, 3, 1), tf.float32),
                                                         tf.constant(c, tf.float32)).numpy()
    expected = ref.ada_tf_discriminator(v["D"], d, img, c)
    np.testing.assert_allclose(got, expected, atol=1e-5 * max(1, np.abs(expected).max()), rtol=0)


def test_ada_pickle_to_keras_file(tmp_path):
    g = dict(z_dim=8, c_dim=2, w_dim=8, img_resolution=8, img_channels=3, mapping_kwargs=dict(num_layers=2),
             synthesis_kwargs=dict(channel_base=64, channel_max=16))
    d = dict(c_dim=2, img_resolution=8, img_channels=3, channel_base=64, channel_max=16, mapping_kwargs=dict(num_layers=1))
    data, sds = op.ada_pickle(g, d)
    (tmp_path / "in.pkl").write_bytes(data)
    nets = official.convert(str(tmp_path / "in.pkl"), str(tmp_path / "G.keras"))
    assert nets.format == "stylegan2-ada-pytorch" and sorted(os.listdir(tmp_path)) == ["G.keras", "in.pkl"]
    G = load_generator(str(tmp_path / "G.keras"))
    z, c = np.random.RandomState(0).randn(2, 8), np.eye(2)
    got = G(tf.constant(z, tf.float32), tf.constant(c, tf.float32), noise_mode="const").numpy().transpose(0, 3, 1, 2)
    np.testing.assert_allclose(got, ref.ada_generator(sds["G_ema"], g, z, c), atol=1e-4, rtol=0)
    with pytest.raises(UserError, match="already exists"):
        official.convert(str(tmp_path / "in.pkl"), str(tmp_path / "G.keras"))


def _zip(path, members):
    with zipfile.ZipFile(path, "w") as z:
        for name, content in members.items():
            z.writestr(name, content)


def bad_inputs(tmp_path):
    """name -> (writes the input file, phrase the one-line error must contain)."""
    tf1, _ = op.tf1_pickle(G_KW, D_KW)
    conditional, _ = op.tf1_pickle(dict(G_KW, label_size=4), D_KW)
    pagan, _ = op.ada_tf_pickle(G_KW, dict(D_KW, use_pagan=True))
    marker = tmp_path / "pwned"
    return {
        "truncated": (lambda p: p.write_bytes(tf1[: len(tf1) // 3]), "is truncated"),
        "random zip": (lambda p: _zip(p, {"readme.txt": "hello"}), "is a zip archive"),
        "torch.save zip": (lambda p: _zip(p, {"archive/data.pkl": pickle.dumps({}), "archive/version": "3\n"}), "is a zip archive"),
        "torch.save legacy": (lambda p: p.write_bytes(op.torch_storage_bytes(np.ones(3, np.float32))), "is a torch.save file"),
        "list pickle": (lambda p: p.write_bytes(pickle.dumps([1, 2, 3])), "holds a list, not NVIDIA networks"),
        "unsupported option": (lambda p: p.write_bytes(conditional), "conditional TF1 networks"),
        "ada TF comparison method": (lambda p: p.write_bytes(pagan), "use_pagan=True (a comparison method"),
        "malicious": (lambda p: p.write_bytes(op.dumps(op.Reduce(op.Global("posix", "system"), (f"touch {marker}",)), 4)),
                      "refusing to load posix.system"),
    }


@pytest.mark.parametrize("kind", ["truncated", "random zip", "torch.save zip", "torch.save legacy", "list pickle",
                                  "unsupported option", "ada TF comparison method", "malicious"])
def test_bad_input_is_one_line_error_and_writes_nothing(tmp_path, kind):
    write, phrase = bad_inputs(tmp_path)[kind]
    write(tmp_path / "in.pkl")
    (tmp_path / "kept.keras").write_bytes(b"previous good file")
    r = convert(f"--pkl={tmp_path / 'in.pkl'}", f"--out={tmp_path / 'new.keras'}", f"--out_d={tmp_path / 'kept.keras'}",
                "--overwrite")
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("convert_official.py: error:") and phrase in lines[0], r.stderr
    assert sorted(os.listdir(tmp_path)) == ["in.pkl", "kept.keras"]  # no output, no temporary left behind
    assert (tmp_path / "kept.keras").read_bytes() == b"previous good file"


def test_output_problems_are_found_before_reading(tmp_path):
    with pytest.raises(UserError, match="must end in .keras"):
        official.convert(str(tmp_path / "missing.pkl"), str(tmp_path / "G.h5"))
    with pytest.raises(UserError, match="must differ"):
        official.convert(str(tmp_path / "missing.pkl"), str(tmp_path / "G.keras"), out_g=str(tmp_path / "G.keras"))
    with pytest.raises(UserError, match="no such file"):
        official.convert(str(tmp_path / "missing.pkl"), str(tmp_path / "G.keras"))
    (tmp_path / "text.pkl").write_text("not a pickle")
    with pytest.raises(UserError, match="no pickle protocol header"):
        official.read(str(tmp_path / "text.pkl"))
