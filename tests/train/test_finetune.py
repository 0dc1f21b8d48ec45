"""Fine-tuning (--resume=<network pickle> or --resume=G.keras --resume_d=D.keras): a new run takes
G, D and G_ema from the source and starts everything else fresh; a fine-tuning run continues in
place like any other; a source that does not fit the dataset or the flags is refused before
anything is written. Runs older than augmentation resume as they trained."""

import hashlib
import json
import os

import numpy as np
import pytest

from official import official_pickles as op
from test_train_runner import TINY, jsonl, run_dir_of, train, tree_digest
from tf_stylegan2 import official
from tf_stylegan2.checkpoint import load_discriminator, load_generator
from tf_stylegan2.train.loop import setup
from tf_stylegan2.train.options import TrainOptions

DATA = ["--data=builtin:shapes16", "--cfg=small", "--batch=8", "--mirror"]


def ada_kwargs(res=16, channels=3, c_dim=0):
    """stylegan2-ada-pytorch init kwargs of a small network (about as big as the runner tests' TINY)."""
    g = dict(z_dim=32, c_dim=c_dim, w_dim=32, img_resolution=res, img_channels=channels,
             mapping_kwargs=dict(num_layers=2), synthesis_kwargs=dict(channel_base=256, channel_max=32,
                                                                      architecture="skip", num_fp16_res=0))
    d = dict(c_dim=c_dim, img_resolution=res, img_channels=channels, architecture="resnet", channel_base=256,
             channel_max=32, num_fp16_res=0, block_kwargs=dict(freeze_layers=0), mapping_kwargs=dict(num_layers=2),
             epilogue_kwargs=dict(mbstd_group_size=4, mbstd_num_channels=1))
    return g, d


def write_pickle(path, drop=(), **kw):
    data, _ = op.ada_pickle(*ada_kwargs(**kw))
    if drop:  # rewrite the snapshot without some networks
        g, d = ada_kwargs(**kw)
        rng = np.random.RandomState(0)
        nets = {"G": op.module_tree("Generator", op.ada_generator_state(g, rng), g),
                "D": op.module_tree("Discriminator", op.ada_discriminator_state(d, rng), d, empty=("b4.mbstd",)),
                "G_ema": op.module_tree("Generator", op.ada_generator_state(g, rng), g)}
        data = op.dumps({k: v for k, v in nets.items() if k not in drop}, 4)
    with open(path, "wb") as f:
        f.write(data)
    return str(path)


@pytest.fixture(scope="module")
def pickle_path(tmp_path_factory):
    return write_pickle(tmp_path_factory.mktemp("pkl") / "ffhq16.pkl")


def weights(model):
    return [v.numpy() for v in model.weights]


def test_a_pickle_gives_g_d_and_g_ema_and_nothing_else(pickle_path, tmp_path):
    run = setup(TrainOptions(outdir=str(tmp_path), data="builtin:shapes16", cfg="small", batch=8, mirror=True,
                             kimg=0.1), resume=pickle_path, log=lambda line: None)
    nets = official.read(pickle_path).networks
    for ours, name in ((run.state.G, "G"), (run.state.D, "D"), (run.state.G_ema, "G_ema")):
        for a, b in zip(weights(ours), weights(nets[name].build())):
            np.testing.assert_array_equal(a, b)
    assert not np.array_equal(weights(run.state.G)[-1], weights(run.state.G_ema)[-1])  # G and G_ema differ
    # Fresh: counters, optimizers, p; the pickle's architecture, the preset's training hyper-parameters.
    s, t = run.state, run.config.train
    assert int(s.cur_nimg.numpy()) == 0 and int(s.G_opt.iterations.numpy()) == 0 and float(s.augment.p.numpy()) == 0
    assert run.config.G == nets["G_ema"].config and run.config.D == nets["D"].config and run.config.G.z_dim == 32
    assert t.batch_size == 8 and t.g_lr == 0.0025 and t.ada_kimg == 100 and t.ema_rampup is None  # as stylegan2-ada
    # The run directory says where it started.
    assert os.path.basename(run.run_dir) == "00000-shapes16-mirror-small-b8-resumeffhq16"
    stored = json.load(open(os.path.join(run.run_dir, "training_options.json")))
    sha = hashlib.sha256(open(pickle_path, "rb").read()).hexdigest()
    assert stored["pretrained"] == {"path": pickle_path, "format": "stylegan2-ada-pytorch", "files": {pickle_path: sha}}


def test_a_keras_pair_gives_g_and_g_ema_the_generator(pickle_path, tmp_path):
    g_path, d_path = str(tmp_path / "G.keras"), str(tmp_path / "D.keras")
    official.convert(pickle_path, g_path, out_d=d_path)
    run = setup(TrainOptions(outdir=str(tmp_path / "runs"), data="builtin:shapes16", cfg="small", batch=8),
                resume=g_path, resume_d=d_path, log=lambda line: None)
    for ours, source in ((run.state.G, load_generator(g_path)), (run.state.G_ema, load_generator(g_path)),
                         (run.state.D, load_discriminator(d_path))):
        for a, b in zip(weights(ours), weights(source)):
            np.testing.assert_array_equal(a, b)
    assert json.load(open(os.path.join(run.run_dir, "training_options.json")))["pretrained"]["format"] == "keras"


def test_fine_tuning_run_trains_and_continues_in_place(pickle_path, tmp_path):
    r = train(*DATA, f"--resume={pickle_path}", "--freezed=4", "--kimg=0.016", "--tick=0.008", "--snap=1",
              f"--outdir={tmp_path}")
    assert r.returncode == 0, r.stderr[-3000:]
    run_dir = run_dir_of(tmp_path)
    assert "fine-tuning " + pickle_path in r.stdout and "Freeze-D 4 layers" in r.stdout
    # Freeze-D: b16 (fromrgb, conv0, conv1, skip) kept the pickle's weights, the rest trained.
    D = load_discriminator_from_checkpoint(run_dir)
    source = official.read(pickle_path).networks["D"].build()
    for block, name in [("b16", n) for n in ("fromrgb", "conv0", "conv1", "skip")]:
        for a, b in zip(getattr(D.blocks[0], name).weights, getattr(source.blocks[0], name).weights):
            np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=f"{block}.{name}")
    assert not np.array_equal(D.blocks[1].conv0.weights[0].numpy(), source.blocks[1].conv0.weights[0].numpy())
    # --resume=<its run directory> continues it with the pickle's architecture.
    r = train(f"--resume={run_dir}", "--kimg=0.032")
    assert r.returncode == 0, r.stderr[-3000:]
    assert jsonl(os.path.join(run_dir, "stats.jsonl"))[-1]["cur_nimg"] == 32
    assert "fine-tuning" not in r.stdout and os.listdir(tmp_path) == [os.path.basename(run_dir)]


def load_discriminator_from_checkpoint(run_dir):
    from tf_stylegan2 import checkpoint
    from tf_stylegan2.config import StyleGAN2Config
    from tf_stylegan2.networks import Discriminator

    cfg = StyleGAN2Config.from_dict(checkpoint.read_run_options(run_dir)["config"])
    D = Discriminator(cfg.D)
    checkpoint.restore({"D": D.weights}, checkpoint.latest(run_dir))
    return D


@pytest.mark.parametrize("case", ["no_d", "resolution", "channels", "labels", "cond_missing", "cbase", "keras_alone",
                                  "resume_d_alone", "not_a_pickle", "missing"])
def test_bad_sources_are_one_line_and_write_nothing(tmp_path, case):
    source = tmp_path / "net.pkl"
    args, message = {
        "no_d": ([], "holds no discriminator 'D': fine-tuning needs one"),
        "resolution": ([], "makes 8x8 images, but dataset builtin:shapes16 holds 16x16"),
        "channels": ([], "makes 1-channel images, but dataset builtin:shapes16 holds 3-channel images"),
        "labels": (["--cond"], "takes 3 labels, but the run gives it 4 labels from dataset builtin:shapes16"),
        "cond_missing": ([], "takes 4 labels, but the run gives it no labels (no --cond)"),
        "cbase": (["--cbase=512"], "--cbase would change the architecture, which comes from the pretrained"),
        "keras_alone": ([], "fine-tuning needs its discriminator too (--resume_d=D.keras)"),
        "resume_d_alone": ([f"--resume_d={tmp_path / 'D.keras'}"], "--resume_d needs --resume=<generator .keras"),
        "not_a_pickle": ([], "is not a network pickle"),
        "missing": ([], "no such run directory or network file"),
    }[case]
    if case == "no_d":
        write_pickle(source, drop=("D",))
    elif case == "resolution":
        write_pickle(source, res=8)
    elif case == "channels":
        write_pickle(source, channels=1)
    elif case in ("labels", "cond_missing"):
        write_pickle(source, c_dim=3 if case == "labels" else 4)
    elif case == "keras_alone":
        write_pickle(tmp_path / "x.pkl")
        source = tmp_path / "G.keras"
        official.convert(str(tmp_path / "x.pkl"), str(source))
    elif case == "not_a_pickle":
        source.write_text("hello")
    elif case != "missing":
        write_pickle(source)
    resume = [] if case == "resume_d_alone" else [f"--resume={source}"]
    before = tree_digest(str(tmp_path))
    outdir = tmp_path / "runs"
    r = train(*DATA, *resume, *args, f"--outdir={outdir}")
    assert r.returncode == 2, r.stderr[-3000:]
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("train.py: error:") and message in lines[0], r.stderr
    assert not outdir.exists() and tree_digest(str(tmp_path)) == before


def test_a_run_from_before_augmentation_resumes_as_it_trained(tmp_path):
    """Its options and config lack the augmentation fields and its checkpoint the augmentation state:
    its options read back without augmentation; asked for ADA explicitly, it resumes with p from 0."""
    r = train(*TINY, "--aug=noaug", "--kimg=0.016", "--tick=0.008", "--snap=1", f"--outdir={tmp_path}")
    assert r.returncode == 0, r.stderr[-3000:]
    run_dir = run_dir_of(tmp_path)
    path = os.path.join(run_dir, "training_options.json")
    stored = json.load(open(path))
    for key in ("aug", "p", "target", "augpipe", "freezed"):
        del stored["options"][key]
    for key in ("augment_pipe", "augment_p", "ada_target", "ada_interval", "ada_kimg", "freeze_layers"):
        del stored["config"]["train"][key]
    with open(path, "w") as f:
        json.dump(stored, f)
    assert TrainOptions.from_dict(stored["options"]).aug == "noaug"
    r = train(f"--resume={run_dir}", "--kimg=0.024", "--aug=ada")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "its checkpoint holds no augmentation state: p starts at 0" in r.stdout
    assert jsonl(os.path.join(run_dir, "stats.jsonl"))[-1]["Progress/augment"] == 0
