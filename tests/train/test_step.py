"""The training step: NVIDIA's schedule and hyper-parameters, Adam on the right objective, mixed
precision and XLA, and the per-sample random streams."""


import numpy as np
import pytest
import tensorflow as tf

from tf_stylegan2.config import resolve
from tf_stylegan2.fileio import UserError
from tf_stylegan2.train import augment, inputs
from tf_stylegan2.train.state import create_state, discriminator_layers, lazy_hyperparameters
from tf_stylegan2.train.step import Trainer, ema_beta, phases
from train_helpers import random_dataset, tiny_config


def make_trainer(cfg, policy="float32", loss_scaling=False, jit=False, seed=0):
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    with strategy.scope():
        state = create_state(cfg, policy, seed, loss_scaling)
        trainer = Trainer(state, cfg.train, strategy, jit=jit, loss_scaling=loss_scaling)
    return strategy, state, trainer


def batches(strategy, cfg, dataset, seed=0, start=0):
    return iter(inputs.distributed_samples(strategy, dataset, cfg.train.batch_size, use_labels=cfg.G.c_dim > 0,
                                           mirror=False, seed=seed, start_image=start, z_dim=cfg.G.z_dim))


def test_lazy_regularization_hyperparameters_follow_nvidia():
    # stylegan2-ada training_loop: mb_ratio = reg_interval / (reg_interval + 1).
    lr, betas = lazy_hyperparameters(0.002, (0.0, 0.99), 4)
    assert lr == pytest.approx(0.0016) and betas == (0.0, pytest.approx(0.99**0.8))
    lr, betas = lazy_hyperparameters(0.0025, (0.0, 0.99), 16)
    assert lr == pytest.approx(0.0025 * 16 / 17) and betas[1] == pytest.approx(0.99 ** (16 / 17))
    state = create_state(tiny_config(8, g_lr=0.002, d_lr=0.003), "float32", 0, False)
    assert float(state.G_opt.learning_rate) == pytest.approx(0.0016)
    assert float(state.D_opt.learning_rate) == pytest.approx(0.003 * 16 / 17)
    assert state.D_opt.beta_2 == pytest.approx(0.99 ** (16 / 17)) and state.G_opt.epsilon == 1e-8


def test_phase_schedule():
    paper = phases(resolve("paper256", 256).train)
    assert [(p.name, p.interval, p.gain) for p in paper] == [
        ("Gmain", 1, 1.0), ("Greg", 4, 4.0), ("Dmain", 1, 1.0), ("Dreg", 16, 16.0)]
    assert [p.name for p in phases(resolve("cifar", 32).train)] == ["Gmain", "Dmain", "Dreg"]  # pl_weight 0


def test_ema_beta_half_life_and_rampup():
    cfg = resolve("paper256", 256).train  # ema_kimg 20, batch 64, no ramp-up
    assert float(ema_beta(cfg, tf.constant(10**6, tf.int64))) == pytest.approx(0.5 ** (64 / 20000), rel=1e-6)
    auto = resolve("auto", 32).train  # ema_kimg 10, ramp-up 0.05, batch 32
    assert float(ema_beta(auto, tf.constant(1000, tf.int64))) == pytest.approx(0.5 ** (32 / 50), rel=1e-6)
    assert float(ema_beta(auto, tf.constant(10**7, tf.int64))) == pytest.approx(0.5 ** (32 / 10000), rel=1e-6)


def test_first_discriminator_step_is_adam_on_the_logistic_loss():
    """Dmain's update equals Keras Adam's first step (m = g, v = (1 - b2) g^2) with D's lazily
    adjusted hyper-parameters, on the gradient of mean(softplus(D(G(z))) + softplus(-D(x)))."""
    cfg = tiny_config(8, g={"use_noise": False}, style_mixing_prob=0.0, d_lr=0.01)
    dataset = random_dataset(8)
    strategy, state, trainer = make_trainer(cfg)
    batch = next(batches(strategy, cfg, dataset))
    before = [v.numpy() for v in state.D.trainable_variables]
    with tf.GradientTape() as tape:
        fake = state.G(batch["gen_z"][:, 2])
        loss = tf.reduce_mean(tf.nn.softplus(state.D(fake)) + tf.nn.softplus(-state.D(batch["img"])))
    grads = [g.numpy() for g in tape.gradient(loss, state.D.trainable_variables)]
    trainer._run["Dmain"](batch)
    lr, (_, beta_2) = lazy_hyperparameters(0.01, (0.0, 0.99), 16)
    for w0, g, w1 in zip(before, grads, state.D.trainable_variables):
        step = lr * np.sqrt(1 - beta_2) * g / (np.sqrt((1 - beta_2) * g**2) + 1e-8)
        np.testing.assert_allclose(w1.numpy(), w0 - step, rtol=1e-4, atol=1e-6)


def test_regularization_objectives_carry_their_gain():
    cfg = tiny_config(8, g={"use_noise": False}, r1_gamma=3.0, pl_weight=2.0, pl_batch_shrink=2)
    dataset = random_dataset(8)
    strategy, state, trainer = make_trainer(cfg)
    batch = next(batches(strategy, cfg, dataset))
    objective, stats, moved = trainer._d_reg(batch, {}, 16.0)
    with tf.GradientTape() as tape:
        tape.watch(batch["img"])
        logits = state.D(batch["img"])
    r1 = np.sum(tape.gradient(logits, batch["img"]).numpy() ** 2, axis=(1, 2, 3))
    np.testing.assert_allclose(objective.numpy(), np.mean(r1) * 3.0 / 2 * 16, rtol=1e-4)
    assert moved == []
    # Greg as NVIDIA's StyleGAN2Loss defines it (stylegan2-ada-pytorch training/loss.py), on the
    # first batch // pl_batch_shrink samples: y = randn(img) / sqrt(H W), g = d sum(G(ws) y) / d ws,
    # lengths = sqrt(mean over ws of sum over w of g^2), a = the path-length mean moved by
    # pl_decay (from 0), objective = mean((lengths - a)^2) * pl_weight * gain.
    greg = next(p for p in trainer.phases if p.name == "Greg")
    draws = trainer._draws(greg, batch, tf.constant(0, tf.int64))
    objective, stats, moved = trainer._g_reg(batch, draws, 4.0)
    y = draws["pl_noise"].numpy()
    assert y.shape == (2, 8, 8, 3) and 0.8 < np.std(y) * 8 < 1.2
    ws = trainer._mapped_ws(batch, draws, "Greg", 2)[0]
    with tf.GradientTape() as tape:
        tape.watch(ws)
        projected = tf.reduce_sum(state.G.synthesis(ws, noise_mode="none") * y)
    g = tape.gradient(projected, ws).numpy()
    lengths = np.sqrt(np.mean(np.sum(g**2, axis=2), axis=1))
    a = 0.01 * lengths.mean()
    np.testing.assert_allclose(objective.numpy(), np.mean((lengths - a) ** 2) * 2.0 * 4, rtol=1e-4)
    assert len(moved) == 2  # w_avg and the path-length mean
    assert float(moved[1]) == pytest.approx(a, rel=1e-5)


def test_iterations_run_the_lazy_phases_and_advance():
    cfg = tiny_config(8, g_reg_interval=2, d_reg_interval=3)
    dataset = random_dataset(16)
    strategy, state, trainer = make_trainer(cfg)
    it = batches(strategy, cfg, dataset)
    seen = [sorted(trainer.iteration(next(it))) for _ in range(4)]
    has = lambda k, key: key in seen[k]  # noqa: E731
    assert [has(k, "Loss/pl_length") for k in range(4)] == [True, False, True, False]
    assert [has(k, "Loss/r1_penalty") for k in range(4)] == [True, False, False, True]
    assert int(state.cur_nimg.numpy()) == 16 and int(state.batch_idx.numpy()) == 4
    # G's optimizer stepped for Gmain 4 times and Greg twice.
    assert int(state.G_opt.iterations.numpy()) == 6 and int(state.D_opt.iterations.numpy()) == 6


@pytest.mark.parametrize("policy,loss_scaling,jit", [
    ("mixed_bfloat16", False, False),
    ("mixed_float16", True, False),  # float16 with dynamic loss scaling, as on GPUs
    ("float32", False, True),
])
def test_mixed_precision_and_xla_steps_are_finite_and_close_to_float32(policy, loss_scaling, jit):
    # Without synthesis noise: XLA draws other numbers than the CPU kernels from the same seeds.
    # With discriminator augmentation (its draws are outside the XLA core).
    cfg = tiny_config(8, g={"num_fp16_res": 2, "conv_clamp": 256, "use_noise": False},
                      d={"num_fp16_res": 2, "conv_clamp": 256}, augment_pipe="bgcfnc", augment_p=0.5)
    dataset = random_dataset(16)
    first = {}
    for variant in ("reference", "tested"):
        args = dict(policy=policy, loss_scaling=loss_scaling, jit=jit) if variant == "tested" else {}
        strategy, state, trainer = make_trainer(cfg, **args)
        it = batches(strategy, cfg, dataset)
        stats = [{k: float(v) for k, v in trainer.iteration(next(it)).items()} for _ in range(3)]
        assert all(np.isfinite(v) for s in stats for v in s.values())
        assert all(np.all(np.isfinite(v.numpy())) for v in state.G.weights + state.D.weights)
        first[variant] = stats[0]
    if loss_scaling:
        scale = float(state.G_opt.dynamic_scale.numpy())
        assert np.isfinite(scale) and scale > 1
    # The first iteration sees the same weights and inputs: XLA computes the same losses, and low
    # precision stays near them. (Later weights are not compared: Adam's first steps move every
    # weight by about +-lr, so rounding flips the sign of near-zero gradients.)
    tol = 1e-4 if jit else 0.05
    for key, value in first["reference"].items():
        assert abs(first["tested"][key] - value) < tol * max(1.0, abs(value)), key


def test_mixing_cutoff_distribution():
    seed, num_ws = tf.constant(3, tf.int64), 8
    cuts = np.array([int(inputs.mixing_cutoff(seed, tf.constant(k, tf.int64), "Gmain", num_ws, 0.9))
                     for k in range(2000)])
    assert abs(np.mean(cuts == num_ws) - 0.1) < 0.025  # no mixing with probability 1 - 0.9
    mixed = cuts[cuts < num_ws]
    counts = np.bincount(mixed, minlength=num_ws)[1:num_ws]
    assert mixed.min() == 1 and np.all(np.abs(counts / len(mixed) - 1 / 7) < 0.04)  # uniform in [1, num_ws)
    other = [int(inputs.mixing_cutoff(seed, tf.constant(k, tf.int64), "Dmain", num_ws, 0.9)) for k in range(50)]
    assert other != list(cuts[:50])  # phases draw independently


def test_replica_shards_carry_the_same_samples_as_the_whole_batch():
    dataset = random_dataset(20, c_dim=3)
    common = dict(use_labels=True, mirror=True, seed=5, start_image=7,
                  extra=inputs.sample_extras(5, 16, len(dataset)))
    whole = list(dataset.samples(8, **common).take(3))
    halves = list(dataset.samples(4, global_batch=8, shard_offset=4, shard_size=4, **common).take(3))
    for w, h in zip(whole, halves):
        for key in ("img", "c", "pos", "gen_z", "mix_z", "gen_c"):
            np.testing.assert_array_equal(w[key].numpy()[4:], h[key].numpy())
    assert whole[1]["pos"].numpy().tolist() == list(range(15, 23))
    # Every generator-phase latent of a sample is its own.
    z = whole[0]["gen_z"].numpy()
    assert z.shape == (8, 3, 16) and len({tuple(np.round(v, 5)) for v in z.reshape(-1, 16)}) == 24


# ---- discriminator augmentation and Freeze-D ------------------------------------------------------


def test_every_image_d_judges_is_augmented_with_its_own_draws():
    """Dmain (reals and fakes) and Dreg (R1 w.r.t. the image before augmentation) with the pipeline at
    p = 1, against the losses computed here from the same draws."""
    cfg = tiny_config(8, g={"use_noise": False}, augment_pipe="bgc", augment_p=1.0, r1_gamma=2.0)
    dataset = random_dataset(8)
    strategy, state, trainer = make_trainer(cfg)
    batch = next(batches(strategy, cfg, dataset))
    dmain, dreg = (next(p for p in trainer.phases if p.name == n) for n in ("Dmain", "Dreg"))
    draws = trainer._draws(dmain, batch, tf.constant(0, tf.int64))
    real = augment.apply(batch["img"], draws["augment_real"])
    assert np.abs(real.numpy() - batch["img"].numpy()).max() > 0.1
    ws, _, _ = trainer._mapped_ws(batch, draws, "Dmain")
    fake = augment.apply(state.G.synthesis(ws, noise_mode="random", noise_seed=draws["noise_seed"]),
                         draws["augment_fake"])
    expected = np.mean(tf.nn.softplus(state.D(fake)).numpy() + tf.nn.softplus(-state.D(real)).numpy())
    objective, stats, _ = trainer._d_main(batch, draws, 1.0)
    assert float(objective) == pytest.approx(expected, rel=1e-5)
    assert float(stats["Loss/signs/real"]) == pytest.approx(np.mean(np.sign(state.D(real).numpy())))

    draws = trainer._draws(dreg, batch, tf.constant(0, tf.int64))
    assert set(draws) == {"augment_real"}  # Dreg's reals have draws of their own
    with tf.GradientTape() as tape:
        tape.watch(batch["img"])
        logits = state.D(augment.apply(batch["img"], draws["augment_real"]))
    r1 = np.sum(tape.gradient(logits, batch["img"]).numpy() ** 2, axis=(1, 2, 3))
    objective, _, _ = trainer._d_reg(batch, draws, 16.0)
    np.testing.assert_allclose(objective.numpy(), np.mean(r1) * 2.0 / 2 * 16, rtol=1e-4)


def test_adaptive_p_moves_after_every_fourth_minibatch():
    """r_t is the mean sign over every real image D judged in the interval (Dmain each minibatch, Dreg
    every 2nd here), and p moves by batch * 4 / (ada_kimg * 1000) towards the target r_t."""
    cfg = tiny_config(8, augment_pipe="bgc", augment_p=0.5, ada_target=0.6, ada_kimg=0.1, d_reg_interval=2)
    dataset = random_dataset(16)
    strategy, state, trainer = make_trainer(cfg)
    it = batches(strategy, cfg, dataset)
    step, p, signs, seen = 4 * 4 / 100, 0.5, [], set()
    for k in range(8):  # Trainer.iteration, keeping each phase's statistics
        batch = next(it)
        for phase in trainer.phases:
            if k % phase.interval == 0:
                out = trainer._run[phase.name](batch)
                signs += [float(out["Loss/signs/real"])] if "Loss/signs/real" in out else []
        trainer._ema()
        if k % 4 == 3:
            assert len(signs) == 6
            rt, signs = np.mean(signs), []
            p = min(max(p + np.sign(rt - 0.6) * step, 0), 1)
            assert float(state.augment.rt.numpy()) == pytest.approx(rt, abs=1e-6)
        assert float(state.augment.p.numpy()) == pytest.approx(p, abs=1e-6)
        seen.add(p)
    assert len(seen) > 1


def test_freeze_d_leaves_the_first_layers_untrained():
    """stylegan2-ada's freeze_layers counts D's layers from the input: at 16 px (resnet) b16 holds
    fromrgb, conv0, conv1 and skip, b8 conv0, conv1 and skip; --freezed=5 freezes b16 and b8.conv0."""
    cfg = tiny_config(16, freeze_layers=5)
    dataset = random_dataset(8, resolution=16)
    strategy, state, trainer = make_trainer(cfg)
    layers = discriminator_layers(state.D)
    assert [layer.name for layer in layers] == ["fromrgb", "conv0", "conv1", "skip", "conv0", "conv1", "skip"]
    frozen = {id(v) for layer in layers[:5] for v in layer.weights}
    before = {id(v): v.numpy() for v in state.D.trainable_variables}
    it = batches(strategy, cfg, dataset)
    for _ in range(2):
        trainer.iteration(next(it))
    for v in state.D.trainable_variables:
        assert np.array_equal(v.numpy(), before[id(v)]) == (id(v) in frozen), v.path
    assert len(state.D_trained) == len(state.D.trainable_variables) - len(frozen)
    with pytest.raises(UserError, match=r"--freezed=8: D has 7 layers that Freeze-D can freeze"):
        create_state(tiny_config(16, freeze_layers=8), "float32", 0, False)


def test_p_rises_when_d_overfits():
    """The direction of ADA on a very short run: D soon tells its 8 training images from G's (r_t
    above the target of 0.6), so p leaves 0, by 4 * 4 / 200 per interval of 4 minibatches, and
    settles where augmentation brings r_t back to the target."""
    cfg = tiny_config(8, augment_pipe="bgc", ada_target=0.6, ada_kimg=0.2, d_lr=0.01)
    dataset = random_dataset(8)
    strategy, state, trainer = make_trainer(cfg)
    it = batches(strategy, cfg, dataset)
    rt, p = [], []
    for _ in range(40):
        rt.append(float(trainer.iteration(next(it))["Loss/signs/real"]))
        p.append(float(state.augment.p.numpy()))
    first = next(i for i, v in enumerate(p) if v > 0)
    assert np.mean(rt[first - 3 : first + 1]) > 0.6  # it rose after an interval of confident D
    assert max(p) >= 0.16 - 1e-6 and p[-1] > 0  # and more often than it fell
