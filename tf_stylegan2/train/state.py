"""What a training checkpoint holds: the three networks, both optimizers, the loop's counters and,
with discriminator augmentation, its probability p.

Randomness is not state here: every random number of a step is a stateless function of the run's
``seed`` and of positions (``cur_nimg``, ``batch_idx``), so the checkpointed counters are the RNG
state and the data position at once, and a resumed run draws exactly the numbers it would have.
"""

from __future__ import annotations

import dataclasses
from typing import Dict, List, Optional, Tuple

import keras
import tensorflow as tf

from tf_stylegan2.config import StyleGAN2Config, TrainingConfig
from tf_stylegan2.fileio import UserError
from tf_stylegan2.networks import Discriminator, Generator
from tf_stylegan2.train.augment import AdaptiveP


@dataclasses.dataclass
class TrainState:
    """Create it with :func:`create_state` inside the strategy's scope (variables are mirrored)."""

    G: Generator
    D: Discriminator
    G_ema: Generator
    G_opt: keras.optimizers.Optimizer
    D_opt: keras.optimizers.Optimizer
    cur_nimg: tf.Variable  # int64: images shown so far = position of the data stream
    batch_idx: tf.Variable  # int64: minibatches so far (decides the lazy regularization phases)
    pl_mean: tf.Variable  # float32: running mean of the path lengths
    seed: tf.Variable  # int64: the run's seed, from which all random numbers derive
    augment: Optional[AdaptiveP] = None  # p and its heuristic, when D's images are augmented
    freeze_layers: int = 0  # Freeze-D: D's first layers that are not trained

    @property
    def D_trained(self) -> list:
        """D's variables that its optimizer trains: all but those of the frozen layers."""
        frozen = {id(v) for layer in discriminator_layers(self.D)[: self.freeze_layers] for v in layer.weights}
        return [v for v in self.D.trainable_variables if id(v) not in frozen]

    def variables(self) -> Dict[str, list]:
        """What a checkpoint holds, as ordered groups of variables (see ``checkpoint.save``)."""
        groups = {
            "G": self.G.weights, "D": self.D.weights, "G_ema": self.G_ema.weights,
            "G_opt": self.G_opt.variables, "D_opt": self.D_opt.variables,
            "counters": [self.cur_nimg, self.batch_idx, self.pl_mean, self.seed],
        }
        if self.augment is not None:
            groups[AUGMENT_GROUP] = self.augment.variables()
        return groups


AUGMENT_GROUP = "augment"  # the checkpoint group of p: runs from before augmentation have none


def discriminator_layers(D: Discriminator) -> List[keras.layers.Layer]:
    """D's layers in the order Freeze-D counts them (stylegan2-ada's ``freeze_layers``): per block
    from the full resolution down, fromrgb (where there is one), conv0, conv1, skip (resnet). The
    4x4 epilogue and the label mapping are never frozen."""
    names = ("fromrgb", "conv0", "conv1", "skip")
    return [getattr(b, n) for b in D.blocks for n in names if getattr(b, n, None) is not None]


def lazy_hyperparameters(lr: float, betas: Tuple[float, float], reg_interval: int) -> Tuple[float, Tuple[float, float]]:
    """Adam's learning rate and betas for a network regularized every ``reg_interval`` minibatches.

    The regularization phase takes an optimizer step of its own every ``reg_interval`` main steps,
    so both are scaled by ``c = reg_interval / (reg_interval + 1)``: ``lr * c`` and ``beta ** c``
    (the paper's appendix on lazy regularization; stylegan2-ada's ``mb_ratio``).
    """
    c = reg_interval / (reg_interval + 1)
    return lr * c, (betas[0] ** c, betas[1] ** c)


def make_optimizer(lr: float, train_config: TrainingConfig, reg_interval: int, loss_scaling: bool, name: str):
    """Adam with the lazy-regularization adjustment, wrapped for dynamic loss scaling (float16).

    Keras' Adam adds epsilon to ``sqrt(v)`` with the bias correction folded into the step size,
    as TF1's AdamOptimizer did in NVIDIA's StyleGAN2 release (PyTorch adds it to the corrected
    ``sqrt(v_hat)``; the two differ only while ``v`` is tiny).
    """
    lr, (beta_1, beta_2) = lazy_hyperparameters(lr, train_config.betas, reg_interval)
    opt = keras.optimizers.Adam(learning_rate=lr, beta_1=beta_1, beta_2=beta_2, epsilon=train_config.epsilon,
                                name=name)
    return keras.optimizers.LossScaleOptimizer(opt, name=f"{name}_loss_scale") if loss_scaling else opt


def set_learning_rates(state: TrainState, train_config: TrainingConfig) -> None:
    """Sets both optimizers' (lazily adjusted) learning rates from ``train_config``. A checkpoint
    holds the optimizers' learning rates too; a resumed run may ask for others (--glr, --dlr)."""
    t = train_config
    state.G_opt.learning_rate = lazy_hyperparameters(t.g_lr, t.betas, t.g_reg_interval)[0]
    state.D_opt.learning_rate = lazy_hyperparameters(t.d_lr, t.betas, t.d_reg_interval)[0]


def create_state(config: StyleGAN2Config, policy: str, seed: int, loss_scaling: bool) -> TrainState:
    """Networks initialised from ``seed`` (G_ema a copy of G) and built optimizers.

    ``policy`` is the Keras dtype policy of all three networks; ``loss_scaling`` wraps both
    optimizers in a dynamic LossScaleOptimizer (float16 training).
    """
    keras.utils.set_random_seed(seed)
    G = Generator(config.G, dtype=policy, name="G")
    D = Discriminator(config.D, dtype=policy, name="D")
    G_ema = Generator(config.G, dtype=policy, name="G_ema")
    G_ema.set_weights(G.get_weights())
    t = config.train
    layers = len(discriminator_layers(D))
    if not 0 <= t.freeze_layers <= layers:
        raise UserError(f"--freezed={t.freeze_layers}: D has {layers} layers that Freeze-D can freeze "
                        f"(expected 0 to {layers})")
    G_opt = make_optimizer(t.g_lr, t, t.g_reg_interval, loss_scaling, "G_opt")
    D_opt = make_optimizer(t.d_lr, t, t.d_reg_interval, loss_scaling, "D_opt")
    augment = None
    if t.augment_pipe is not None:
        augment = AdaptiveP(t.augment_p, t.ada_target, t.batch_size, t.ada_interval, t.ada_kimg)
    mean = tf.VariableAggregation.MEAN  # replicas assign their own values; the variable keeps the average
    state = TrainState(
        G=G, D=D, G_ema=G_ema, G_opt=G_opt, D_opt=D_opt,
        cur_nimg=tf.Variable(0, dtype=tf.int64, trainable=False, name="cur_nimg"),
        batch_idx=tf.Variable(0, dtype=tf.int64, trainable=False, name="batch_idx"),
        pl_mean=tf.Variable(0.0, dtype=tf.float32, trainable=False, aggregation=mean, name="pl_mean"),
        seed=tf.Variable(seed, dtype=tf.int64, trainable=False, name="seed"),
        augment=augment, freeze_layers=t.freeze_layers,
    )
    # Built now, so that a checkpoint restores into existing slots rather than deferred ones.
    G_opt.build(G.trainable_variables)
    D_opt.build(state.D_trained)
    return state
