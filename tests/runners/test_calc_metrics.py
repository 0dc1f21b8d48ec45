"""runners.calc_metrics end to end: results printed and appended to the run's metric-<name>.jsonl,
networks of every kind, bad input as one line, exit 2 and no result file."""

import json
import os
import subprocess
import sys

import numpy as np

from tf_stylegan2 import Generator, GeneratorConfig, MappingConfig

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run(*args, cache=None):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    cache_flag = [f"--cache_dir={cache}"] if cache else ["--cache_dir="]
    return subprocess.run([sys.executable, "-m", "runners.calc_metrics", *args, *cache_flag], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)


def tiny_generator(resolution=16, c_dim=0):
    return Generator(GeneratorConfig(img_resolution=resolution, z_dim=4, w_dim=4, c_dim=c_dim, channel_base=32,
                                     channel_max=8, mapping=MappingConfig(num_layers=1)))


def fake_run(tmp_path, data="builtin:shapes16", mirror=False):
    """A training run directory as runners.train leaves it (the parts calc_metrics reads)."""
    run_dir = tmp_path / "00000-shapes16-small-b4"
    run_dir.mkdir()
    (run_dir / "training_options.json").write_text(json.dumps({"options": {"data": data, "mirror": mirror}}))
    tiny_generator().save(run_dir / "network-snapshot-000000100.keras")
    return run_dir


def jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def test_classifier_metrics_of_a_run_are_printed_and_appended(tmp_path):
    run_dir = fake_run(tmp_path)
    r = run(f"--network={run_dir}", "--metrics=fd1k_clf,kid1k_clf")
    assert r.returncode == 0, r.stderr
    printed = [json.loads(line) for line in r.stdout.strip().splitlines()]
    assert [p["metric"] for p in printed] == ["fd1k_clf", "kid1k_clf"]
    for p in printed:
        stored = jsonl(run_dir / f"metric-{p['metric']}.jsonl")
        assert stored == [p]
        assert p["snapshot_pkl"] == "network-snapshot-000000100.keras" and p["num_gpus"] == 1
        assert {"results", "metric", "total_time", "total_time_str", "timestamp", "detector"} <= set(p)
    assert printed[0]["results"]["fd1k_clf"] > 0
    # The same generator given as a file of the run: the same numbers (deterministic), appended.
    r = run(f"--network={run_dir / 'network-snapshot-000000100.keras'}", "--metrics=fd1k_clf")
    assert r.returncode == 0, r.stderr
    lines = jsonl(run_dir / "metric-fd1k_clf.jsonl")
    assert len(lines) == 2 and lines[1]["results"] == lines[0]["results"]


def test_bad_input_is_one_line_and_writes_no_result(tmp_path):
    run_dir = fake_run(tmp_path)
    snapshot = run_dir / "network-snapshot-000000100.keras"
    not_weights = tmp_path / "G.keras"
    tiny_generator().save(not_weights)
    small = tmp_path / "small"
    small.mkdir()
    from PIL import Image

    for i in range(3):
        Image.fromarray(np.zeros([16, 16, 3], np.uint8)).save(small / f"{i}.png")
    cache = tmp_path / "cache"
    cases = [
        (["--metrics=fid50k_fulll"], "unknown metric 'fid50k_fulll'"),
        (["--metrics=fid2k_full,pr2k3_full"], "fid2k_full needs the inception weights: pass --inception"),
        (["--metrics=fd1k_clf", "--data=builtin:shapes32"], "makes 16x16x3 images but dataset builtin:shapes32"),
        (["--metrics=fd1k_clf", f"--data={small}"], "fd1k_clf needs 1000 real images, but dataset"),
    ]
    for args, message in cases:
        r = run(f"--network={run_dir}", *args, cache=cache)
        assert r.returncode == 2, (args, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("calc_metrics.py: error:") and message in lines[0], (args,
                                                                                                         r.stderr)
    sys.path.insert(0, os.path.join(ROOT, "tests", "official"))
    import torch_writer as tw

    truncated = tmp_path / "pt_inception-2015-12-05-6726825d.pth"
    data = tw.zip_bytes(tw.state_dict({"Conv2d_1a_3x3.conv.weight": tw.array_tensor(np.ones([32, 3, 3, 3], np.float32))}))
    truncated.write_bytes(data[: len(data) // 2])
    for weights, message in [(not_weights, "is a Keras model, not Inception weights"),
                             (truncated, "cannot read Inception weights")]:
        r = run(f"--network={run_dir}", "--metrics=fid2k_full", f"--inception={weights}", cache=cache)
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 2 and len(lines) == 1 and message in lines[0], r.stderr
    r = run(f"--network={not_weights}", "--metrics=fd1k_clf")
    assert r.returncode == 2 and "--data is needed" in r.stderr
    r = run(f"--network={tmp_path / 'missing.keras'}", "--metrics=fd1k_clf", "--data=builtin:shapes16")
    assert r.returncode == 2 and "no such file or directory" in r.stderr
    assert sorted(os.listdir(run_dir)) == ["network-snapshot-000000100.keras", "training_options.json"]
    assert not cache.exists() or not os.listdir(cache)
    assert snapshot.exists()


def test_official_pickles_load_as_generators(tmp_path):
    """load_generator, the loader calc_metrics uses, reads both official pickle formats (their G_ema)."""
    import tensorflow as tf

    sys.path.insert(0, os.path.join(ROOT, "tests", "official"))
    import official_pickles as op

    from tf_stylegan2 import official
    from tf_stylegan2.checkpoint import load_generator

    g = dict(z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=3, mapping_kwargs=dict(num_layers=2),
             synthesis_kwargs=dict(channel_base=64, channel_max=16))
    d = dict(c_dim=0, img_resolution=16, img_channels=3, channel_base=64, channel_max=16)
    ada, _ = op.ada_pickle(g, d)
    tf1, _ = op.tf1_pickle(dict(resolution=16, num_channels=3, fmap_base=64, fmap_max=16, latent_size=8,
                                dlatent_size=8, mapping_layers=2), dict(resolution=16, num_channels=3, fmap_base=64,
                                                                        fmap_max=16))
    z = tf.constant(np.random.RandomState(0).randn(2, 8), tf.float32)
    for name, data in (("ada.pkl", ada), ("tf1.pkl", tf1)):
        (tmp_path / name).write_bytes(data)
        G = load_generator(str(tmp_path / name))
        reference = official.read(str(tmp_path / name)).networks["G_ema"].build()
        assert G.img_resolution == 16
        np.testing.assert_array_equal(G(z, noise_mode="const").numpy(), reference(z, noise_mode="const").numpy())
