"""Generator and Discriminator models, assembled from ``layers/`` by a config dataclass.

Both are Keras 3 models: ``.keras`` files save and restore them (config + weights), and their
dtype policy controls mixed precision. With a mixed policy ('mixed_bfloat16' on CPU,
'mixed_float16' on GPU) the ``num_fp16_res`` highest-resolution blocks compute in the low
precision dtype and everything else (mapping, low resolutions, ToRGB sums, logits) in float32, as
in stylegan2-ada; with a float32 policy everything is float32.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Union

import keras
import tensorflow as tf

from layers.discriminator import DiscriminatorEpilogue, discriminator_blocks
from layers.mapping import MappingNetwork
from layers.rules import block_policies, channels_per_resolution, check_architecture, check_resolution
from layers.synthesis import SynthesisNetwork
from tf_stylegan2.config import DiscriminatorConfig, GeneratorConfig

Scalar = Union[float, tf.Tensor]


def _fp16_policy(policy: keras.DTypePolicy) -> Optional[str]:
    """The policy of the fp16 resolutions: the model's own when it is mixed, else None (none)."""
    return policy.name if policy.compute_dtype != policy.variable_dtype else None


def _check_labels(model: keras.Model, c: Optional[tf.Tensor], batch: Optional[int]) -> None:
    """Unconditional models accept no labels (or empty ones); conditional models require them."""
    c_dim = model.config.c_dim
    if c_dim == 0:
        if c is not None and c.shape[-1] not in (0, None):
            raise ValueError(f"{model.name} is unconditional (c_dim=0) but got labels of shape {c.shape.as_list()}")
        return
    if c is None:
        raise ValueError(f"{model.name} is conditional: labels c of shape [batch, {c_dim}] are required")
    if c.shape.rank != 2 or c.shape[-1] != c_dim or (batch is not None and c.shape[0] not in (None, batch)):
        raise ValueError(f"{model.name}: labels must have shape [{batch or '?'}, {c_dim}], got {c.shape.as_list()}")


@keras.saving.register_keras_serializable(package="tf_stylegan2")
class Generator(keras.Model):
    """z (and label c) -> image.

    Shapes: ``z [N, z_dim], c [N, c_dim] -> img [N, R, R, img_channels]`` float32, about [-1, 1].
    ``G.mapping`` (z, c -> ws ``[N, num_ws, w_dim]``) and ``G.synthesis`` (ws -> img) are callable
    on their own, as NVIDIA's ``G.mapping`` / ``G.synthesis``.

    Call options: ``truncation_psi`` / ``truncation_cutoff`` (truncation trick), ``noise_mode``
    ('random', 'const', 'none'), ``noise_seed`` (int tensor [2] for reproducible random noise),
    ``fused_modconv`` (grouped-convolution path; off by default, see layers.synthesis).
    """

    def __init__(self, config: Union[GeneratorConfig, Dict[str, Any]], **kwargs):
        super().__init__(**kwargs)
        if isinstance(config, dict):
            config = GeneratorConfig.from_dict(config)
        check_resolution(config.img_resolution)
        check_architecture(config.architecture)
        self.config = config
        self.z_dim, self.c_dim, self.w_dim = config.z_dim, config.c_dim, config.w_dim
        self.img_resolution, self.img_channels = config.img_resolution, config.img_channels
        self.synthesis = SynthesisNetwork(
            w_dim=config.w_dim,
            img_resolution=config.img_resolution,
            img_channels=config.img_channels,
            channel_base=config.channel_base,
            channel_max=config.channel_max,
            num_fp16_res=config.num_fp16_res,
            fp16_policy=_fp16_policy(self.dtype_policy),
            architecture=config.architecture,
            resample_filter=config.resample_filter,
            conv_clamp=config.conv_clamp,
            use_noise=config.use_noise,
            activation=config.activation,
            const_channels=config.const_channels,
            name="synthesis",
            dtype="float32",
        )
        self.num_ws = self.synthesis.num_ws
        m = config.mapping
        self.mapping = MappingNetwork(
            z_dim=config.z_dim,
            c_dim=config.c_dim,
            w_dim=config.w_dim,
            num_ws=self.num_ws,
            num_layers=m.num_layers,
            embed_features=m.embed_features,
            layer_features=m.layer_features,
            activation=m.activation,
            lr_multiplier=m.lr_multiplier,
            w_avg_beta=m.w_avg_beta,
            name="mapping",
            dtype="float32",
        )
        self.built = True

    def call(
        self,
        z: tf.Tensor,
        c: Optional[tf.Tensor] = None,
        truncation_psi: Scalar = 1.0,
        truncation_cutoff: Optional[Union[int, tf.Tensor]] = None,
        noise_mode: str = "random",
        fused_modconv: bool = False,
        noise_seed: Optional[tf.Tensor] = None,
    ) -> tf.Tensor:
        _check_labels(self, c, z.shape[0] if z.shape.rank else None)
        ws = self.mapping(
            z, c if self.c_dim else None, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff
        )
        return self.synthesis(ws, noise_mode=noise_mode, fused_modconv=fused_modconv, noise_seed=noise_seed)

    def get_config(self) -> Dict[str, Any]:
        return {"config": self.config.to_dict(), "name": self.name, "dtype": self.dtype_policy.name}

    @classmethod
    def from_config(cls, config: Dict[str, Any]) -> "Generator":
        return cls(**config)


@keras.saving.register_keras_serializable(package="tf_stylegan2")
class Discriminator(keras.Model):
    """Image (and label c) -> realness logit.

    Shapes: ``img [N, R, R, img_channels], c [N, c_dim] -> logits [N, 1]`` float32.
    The per-replica batch must be divisible by ``min(mbstd_group_size, batch)``.
    """

    def __init__(self, config: Union[DiscriminatorConfig, Dict[str, Any]], **kwargs):
        super().__init__(**kwargs)
        if isinstance(config, dict):
            config = DiscriminatorConfig.from_dict(config)
        check_resolution(config.img_resolution)
        check_architecture(config.architecture)
        self.config = config
        self.c_dim = config.c_dim
        self.img_resolution, self.img_channels = config.img_resolution, config.img_channels
        channels = channels_per_resolution(config.img_resolution, config.channel_base, config.channel_max)
        fp16_policy = _fp16_policy(self.dtype_policy)
        policies = block_policies(config.img_resolution, config.num_fp16_res, fp16_policy, "float32")
        self.blocks = discriminator_blocks(
            channels, policies, img_channels=config.img_channels, architecture=config.architecture,
            resample_filter=config.resample_filter, conv_clamp=config.conv_clamp, activation=config.activation,
        )
        cmap_dim = 0 if config.c_dim == 0 else (config.cmap_dim or channels[4])
        self.mapping = None
        if config.c_dim > 0:
            m = config.mapping
            self.mapping = MappingNetwork(
                z_dim=0, c_dim=config.c_dim, w_dim=cmap_dim, num_ws=None, num_layers=m.num_layers,
                embed_features=m.embed_features, layer_features=m.layer_features, activation=m.activation,
                lr_multiplier=m.lr_multiplier, w_avg_beta=None, name="mapping", dtype="float32",
            )
        # Stored as b4, NVIDIA's name for it: .keras files hold the epilogue's weights under the
        # attribute's name (the code calls it `epilogue`).
        self.b4 = DiscriminatorEpilogue(
            channels[4], cmap_dim=cmap_dim, resolution=4, img_channels=config.img_channels,
            architecture=config.architecture, mbstd_group_size=config.mbstd_group_size,
            mbstd_num_channels=config.mbstd_num_channels, activation=config.activation,
            conv_clamp=config.conv_clamp, is_first=not self.blocks, name="b4", dtype="float32",
        )
        self.built = True

    @property
    def epilogue(self) -> DiscriminatorEpilogue:
        """The 4x4 head after the blocks: minibatch std, conv, fc, output, label projection."""
        return self.b4

    def call(self, img: tf.Tensor, c: Optional[tf.Tensor] = None) -> tf.Tensor:
        r = self.img_resolution
        if img.shape.rank != 4 or list(img.shape[1:]) != [r, r, self.img_channels]:
            raise ValueError(
                f"{self.name}: images must have shape [batch, {r}, {r}, {self.img_channels}], got {img.shape.as_list()}"
            )
        _check_labels(self, c, img.shape[0])
        x = None
        img = tf.cast(img, tf.float32)
        for block in self.blocks:
            x, img = block(x, img)
        cmap = self.mapping(None, c) if self.mapping is not None else None
        return self.epilogue(x, img, cmap)

    def get_config(self) -> Dict[str, Any]:
        return {"config": self.config.to_dict(), "name": self.name, "dtype": self.dtype_policy.name}

    @classmethod
    def from_config(cls, config: Dict[str, Any]) -> "Discriminator":
        return cls(**config)


def float32_generator(G: Generator) -> Generator:
    """``G`` itself when it computes in float32, else a float32 copy with the same weights.

    Exports and training snapshots are float32: TFLite has no bfloat16, and serving numerics should
    not depend on the precision a network was trained in. Mixed policies keep float32 variables,
    so the copy is exact.
    """
    if G.dtype_policy.name == "float32":
        return G
    copy = Generator(G.config, name=G.name, dtype="float32")
    copy.set_weights(G.get_weights())
    return copy
