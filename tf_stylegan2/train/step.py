"""The training step: one ``tf.function`` per phase, differentiated with ``GradientTape``.

Phases, as in stylegan2-ada-pytorch's training loop (lazy regularization):

=======  ==============================================  =====================  ========
phase    objective                                       runs when              gain
=======  ==============================================  =====================  ========
Gmain    softplus(-D(G(z)))                              every minibatch        1
Greg     pl_weight * (|J_w^T y| - a)^2                   batch_idx % 4 == 0     4
Dmain    softplus(D(G(z))) + softplus(-D(x))             every minibatch        1
Dreg     gamma / 2 * |grad_x D(x)|^2                     batch_idx % 16 == 0    16
=======  ==============================================  =====================  ========

Each phase takes its own optimizer step (G's phases share G's Adam, D's share D's), with the
hyper-parameters adjusted for the interval (``state.lazy_hyperparameters``). After the phases,
G_ema moves towards G and the counters advance.

Inside a phase, a *core* computes the objective, its gradients and any running averages it moves
(``w_avg``, the path-length mean) without assigning anything: it is what ``--jit`` compiles with
XLA. The replica function around it draws the phase's random numbers, applies the gradients (the
optimizer sums them over replicas) and assigns the averages (the variables average the replicas'
values); none of that can live inside an XLA cluster under a distribution strategy.

Objectives are per-replica sums divided by the global batch, so gradients summed over replicas
equal those of one device holding the whole batch.

With discriminator augmentation (``train_config.augment_pipe``), every image D judges, in every phase, goes
through the pipeline of :mod:`.augment` with its own draws (made with the other draws, outside the
core); the phases that judge real images add the signs of D's logits to the adaptive p, which
adjusts after the counters advance.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Dict, List, Optional, Tuple

import tensorflow as tf

from tf_stylegan2 import losses
from tf_stylegan2.config import TrainingConfig
from tf_stylegan2.train import augment, inputs
from tf_stylegan2.train.state import TrainState

Stats = Dict[str, tf.Tensor]


@dataclasses.dataclass(frozen=True)
class Phase:
    name: str
    interval: int  # runs when batch_idx % interval == 0
    gain: float  # multiplies the objective: the interval for lazy regularization


def phases(train_config: TrainingConfig) -> List[Phase]:
    """The phases that do work under ``train_config`` (a regularizer with weight 0 has none).

    The optimizers keep their interval-adjusted hyper-parameters even then, as in stylegan2-ada.
    """
    out = [Phase("Gmain", 1, 1.0)]
    if train_config.pl_weight > 0:
        out.append(Phase("Greg", train_config.g_reg_interval, float(train_config.g_reg_interval)))
    out.append(Phase("Dmain", 1, 1.0))
    if train_config.r1_gamma > 0:
        out.append(Phase("Dreg", train_config.d_reg_interval, float(train_config.d_reg_interval)))
    return out


def ema_beta(train_config: TrainingConfig, cur_nimg: tf.Tensor) -> tf.Tensor:
    """G_ema's decay per minibatch: half-life ``ema_kimg`` thousand images, ramped up over the first
    ``ema_rampup`` fraction of the images seen so far (``min(ema_nimg, cur_nimg * ema_rampup)``)."""
    ema_nimg = tf.constant(train_config.ema_kimg * 1000.0, tf.float64)
    if train_config.ema_rampup is not None:
        ema_nimg = tf.minimum(ema_nimg, tf.cast(cur_nimg, tf.float64) * train_config.ema_rampup)
    return tf.cast(0.5 ** (train_config.batch_size / tf.maximum(ema_nimg, 1e-8)), tf.float32)


class Trainer:
    """Runs training iterations on a :class:`TrainState` under a distribution strategy.

    ``iteration(batch)`` takes one distributed batch (``inputs.distributed_samples``) and returns
    the phases' statistics (global means, float32 scalars): ``Loss/G/loss``, ``Loss/G/reg``,
    ``Loss/pl_length``, ``Loss/D/loss``, ``Loss/D/reg``, ``Loss/r1_penalty``, ``Loss/scores/fake``,
    ``Loss/scores/real``, ``Loss/signs/real`` (the mean sign of D's logits on real images, ADA's
    r_t statistic), ``Loss/pl_mean``.
    """

    def __init__(self, state: TrainState, train_config: TrainingConfig, strategy: tf.distribute.Strategy, *,
                 jit: bool = False, loss_scaling: bool = False):
        if train_config.batch_size % strategy.num_replicas_in_sync:
            raise ValueError(
                f"batch {train_config.batch_size} is not divisible by the {strategy.num_replicas_in_sync} replicas"
            )
        self.state, self.train_config, self.strategy = state, train_config, strategy
        self.jit, self.loss_scaling = jit, loss_scaling
        total = tf.distribute.ReduceOp.SUM  # per-replica stats are already divided by the global batch
        self._reduce = lambda stats: {k: strategy.reduce(total, v, axis=None) for k, v in stats.items()}
        self.phases = phases(train_config)
        self.pipeline = augment.pipeline(train_config.augment_pipe) if train_config.augment_pipe is not None else None
        if (self.pipeline is None) != (state.augment is None):
            raise ValueError("the state's augmentation probability and the config's pipeline go together")
        s = state
        w_avg = [s.G.mapping.w_avg] if s.G.mapping.w_avg is not None else []
        plan = {  # core, optimizer, variables, running averages the core moves (in its order)
            "Gmain": (self._g_main, s.G_opt, s.G.trainable_variables, w_avg),
            "Greg": (self._g_reg, s.G_opt, s.G.trainable_variables, w_avg + [s.pl_mean]),
            "Dmain": (self._d_main, s.D_opt, s.D_trained, w_avg),
            "Dreg": (self._d_reg, s.D_opt, s.D_trained, []),
        }
        self._run = {phase.name: self._distributed(phase, *plan[phase.name]) for phase in self.phases}
        self._ema = tf.function(self._ema_and_advance)
        self._probe = tf.function(lambda batch: strategy.reduce(
            tf.distribute.ReduceOp.SUM, strategy.run(self._non_finite_logits, args=(batch,)), axis=None))

    # ---- random draws of a phase, made outside the core -----------------------------------------

    def _draws(self, phase: Phase, batch: Stats, replica: tf.Tensor) -> Stats:
        """The phase's per-minibatch random numbers: style-mixing cutoff, synthesis noise seed and
        path-length noise. Drawn outside the XLA core, whose stateless random ops give other
        numbers than the CPU kernels for the same seed (the noise layers' own draws still differ)."""
        s, name = self.state, phase.name
        draws = {}
        if self.pipeline is not None:  # the augmentation of each image this phase shows D
            shape = (s.D.img_resolution, s.D.img_resolution, s.D.img_channels)
            for kind in (k for p, k in inputs.AUGMENTED if p == name):
                seeds = inputs.augment_seeds(s.seed, batch["pos"], name, kind)
                draws[f"augment_{kind}"] = augment.draw(self.pipeline, s.augment.p, seeds, shape)
        if name not in inputs.GEN_PHASES:
            return draws
        draws["cutoff"] = inputs.mixing_cutoff(s.seed, s.batch_idx, name, s.G.num_ws, self.train_config.style_mixing_prob)
        draws["noise_seed"] = inputs.synthesis_noise_seed(s.seed, s.batch_idx, name, replica)
        if name == "Greg":
            shape = [s.G.img_resolution, s.G.img_resolution, s.G.img_channels]
            draws["pl_noise"] = inputs.path_length_noise(s.seed, batch["pos"][: self._pl_count(batch)], shape)
        return draws

    def _pl_count(self, batch: Stats) -> int:
        """How many of this replica's samples the path-length phase uses (1 / pl_batch_shrink, as in ada)."""
        count = batch["gen_z"].shape[0] // self.train_config.pl_batch_shrink
        if count < 1:
            raise ValueError(f"the per-replica batch is too small for pl_batch_shrink={self.train_config.pl_batch_shrink}")
        return count

    # ---- per-phase cores: (batch, draws, gain) -> (objective, stats, moved averages) ----------

    @staticmethod
    def _augment(draws: Stats, kind: str) -> losses.Augment:
        """What D's images of ``kind`` go through in this phase: the pipeline with their draws, or nothing."""
        key = f"augment_{kind}"
        return (lambda img: augment.apply(img, draws[key])) if key in draws else None

    def _mapped_ws(self, batch: Stats, draws: Stats, phase: str, count: Optional[int] = None):
        """The phase's generator latents mapped with style mixing: ``(ws, c, [moved w_avg])``, of the
        first ``count`` samples when given."""
        k = inputs.GEN_PHASES.index(phase)
        take = (lambda x: x[:count]) if count else (lambda x: x)
        mix = take(batch["mix_z"][:, k]) if self.train_config.style_mixing_prob > 0 else None
        c = take(batch["gen_c"][:, k])
        ws, w_avg = losses.map_with_mixing(self.state.G, take(batch["gen_z"][:, k]), c, mix, draws["cutoff"])
        return ws, c, [] if w_avg is None else [w_avg]

    def _g_main(self, batch: Stats, draws: Stats, gain: float):
        G, D = self.state.G, self.state.D
        ws, c, moved = self._mapped_ws(batch, draws, "Gmain")
        img = G.synthesis(ws, noise_mode="random", noise_seed=draws["noise_seed"])
        loss, logits = losses.generator_loss(D, img, c, self._augment(draws, "fake"))
        n = self.train_config.batch_size
        stats = {"Loss/G/loss": tf.reduce_sum(loss) / n, "Loss/scores/fake": tf.reduce_sum(logits) / n}
        return tf.reduce_sum(loss) / n * gain, stats, moved

    def _g_reg(self, batch: Stats, draws: Stats, gain: float):
        train, s = self.train_config, self.state
        ws, _, moved = self._mapped_ws(batch, draws, "Greg", self._pl_count(batch))
        lengths = losses.path_lengths(s.G, ws, draws["pl_noise"], draws["noise_seed"])
        penalty, pl_mean = losses.path_length_penalty(lengths, tf.convert_to_tensor(s.pl_mean), train.pl_decay)
        n = train.batch_size // train.pl_batch_shrink
        stats = {
            "Loss/G/reg": tf.reduce_sum(penalty) * train.pl_weight / n,
            "Loss/pl_length": tf.reduce_sum(lengths) / n,
            "Loss/pl_mean": pl_mean / self.strategy.num_replicas_in_sync,  # summed over replicas: their mean
        }
        return tf.reduce_sum(penalty) * train.pl_weight / n * gain, stats, moved + [pl_mean]

    def _d_main(self, batch: Stats, draws: Stats, gain: float):
        G, D = self.state.G, self.state.D
        ws, c, moved = self._mapped_ws(batch, draws, "Dmain")
        img = tf.stop_gradient(G.synthesis(ws, noise_mode="random", noise_seed=draws["noise_seed"]))
        fake_loss, _ = losses.discriminator_fake_loss(D, img, c, self._augment(draws, "fake"))
        real_loss, real_logits = losses.discriminator_real_loss(D, batch["img"], batch["c"],
                                                                self._augment(draws, "real"))
        n = self.train_config.batch_size
        total = tf.reduce_sum(fake_loss + real_loss) / n
        stats = {"Loss/D/loss": total, "Loss/scores/real": tf.reduce_sum(real_logits) / n,
                 "Loss/signs/real": tf.reduce_sum(tf.sign(real_logits)) / n}
        return total * gain, stats, moved

    def _d_reg(self, batch: Stats, draws: Stats, gain: float):
        penalty, logits = losses.r1_penalty(self.state.D, batch["img"], batch["c"], self._augment(draws, "real"))
        n, weight = self.train_config.batch_size, self.train_config.r1_gamma / 2
        stats = {"Loss/r1_penalty": tf.reduce_sum(penalty) / n, "Loss/D/reg": tf.reduce_sum(penalty) * weight / n,
                 "Loss/signs/real": tf.reduce_sum(tf.sign(logits)) / n}
        return tf.reduce_sum(penalty) * weight / n * gain, stats, []

    # ---- plumbing ---------------------------------------------------------------------------

    def _distributed(self, phase: Phase, core: Callable, opt, variables: list, averaged: list):
        """The phase as a tf.function over the strategy: draws, core (XLA with --jit), apply, assign."""
        raw = [v.value for v in variables]  # Keras 3 variables: the tape differentiates the tf.Variables
        loss_scaling, strategy = self.loss_scaling, self.strategy

        def differentiate(batch: Stats, draws: Stats) -> Tuple[list, Stats, list]:
            with tf.GradientTape() as tape:
                objective, stats, moved = core(batch, draws, phase.gain)
                scaled = opt.scale_loss(objective) if loss_scaling else objective
            grads = tape.gradient(scaled, raw, unconnected_gradients=tf.UnconnectedGradients.ZERO)
            return grads, stats, moved

        if self.jit:
            differentiate = tf.function(differentiate, jit_compile=True)

        def replica_fn(batch: Stats) -> Stats:
            replica = tf.cast(tf.distribute.get_replica_context().replica_id_in_sync_group, tf.int64)
            grads, stats, moved = differentiate(batch, self._draws(phase, batch, replica))
            if loss_scaling and strategy.num_replicas_in_sync > 1:
                grads = _agree_on_finiteness(grads)
            opt.apply(grads, variables)
            for var, value in zip(averaged, moved):
                var.assign(value)
            return stats

        ada, n = self.state.augment, self.train_config.batch_size

        @tf.function
        def run(batch: Stats) -> Stats:
            stats = self._reduce(strategy.run(replica_fn, args=(batch,)))
            if ada is not None and "Loss/signs/real" in stats:  # every real image D judged counts for r_t
                ada.accumulate(stats["Loss/signs/real"] * n, n)
            return stats

        return run

    def _ema_and_advance(self) -> None:
        s = self.state
        beta = ema_beta(self.train_config, s.cur_nimg)
        for ema, var in zip(s.G_ema.trainable_variables, s.G.trainable_variables):
            ema.assign(var + (ema - var) * beta)
        for ema, var in zip(s.G_ema.non_trainable_variables, s.G.non_trainable_variables):
            ema.assign(var)  # w_avg and the constant noise follow G (stylegan2-ada copies buffers)
        s.cur_nimg.assign_add(self.train_config.batch_size)
        s.batch_idx.assign_add(1)
        if s.augment is not None:
            s.augment.adjust(s.batch_idx)

    def _non_finite_logits(self, batch: Stats) -> tf.Tensor:
        G, D = self.state.G, self.state.D
        fake = G(batch["gen_z"][:, 0], batch["gen_c"][:, 0] if G.c_dim else None, noise_mode="const")
        logits = tf.concat([D(fake, batch["gen_c"][:, 0] if D.c_dim else None),
                            D(batch["img"], batch["c"] if D.c_dim else None)], axis=0)
        return tf.reduce_sum(tf.cast(tf.logical_not(tf.math.is_finite(logits)), tf.float32))

    def outputs_finite(self, batch: Stats) -> bool:
        """Whether G and D as they are now give finite logits for this batch's real and generated
        images. Weights can be finite and still overflow: a snapshot checks this before it writes."""
        return bool(self._probe(batch).numpy() == 0)

    def phase_function(self, name: str) -> Callable[[Stats], Stats]:
        """The tf.function of phase ``name`` (benchmarks time it and count its work alone)."""
        return self._run[name]

    def iteration(self, batch: Stats) -> Stats:
        """One minibatch: the phases due at ``batch_idx``, then G_ema and the counters."""
        index = int(self.state.batch_idx.numpy())
        stats: Stats = {}
        for phase in self.phases:
            if index % phase.interval == 0:
                stats.update(self._run[phase.name](batch))
        self._ema()
        return stats


def _agree_on_finiteness(grads: list) -> list:
    """Makes every replica's gradients non-finite when any replica's are.

    Keras' LossScaleOptimizer decides to skip a step from the first replica's local gradients;
    a non-finite gradient on another replica would otherwise be summed into the weights.
    """
    finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(g)) for g in grads])
    bad = tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, 1.0 - tf.cast(finite, tf.float32))
    poison = tf.where(bad > 0, tf.constant(float("nan")), tf.constant(1.0))
    return [g * tf.cast(poison, g.dtype) for g in grads]
