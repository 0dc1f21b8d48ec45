"""Importer validation: wrong-typed options and weights in well-formed pickles end in one UserError.

A structure-aware fuzz run mutates one value of a decoded test pickle at a time (options, weights,
and the records around them) and asserts that importing it either succeeds or raises UserError:
never TypeError, OverflowError, IndexError or anything else.
"""

import io
import time

import numpy as np
import official_pickles as op
import pytest

from tf_stylegan2.config import PRESETS, DiscriminatorConfig, GeneratorConfig, MappingConfig
from tf_stylegan2.fileio import UserError
from tf_stylegan2.networks import Discriminator, Generator
from tf_stylegan2 import official
from tf_stylegan2.official import ada_pytorch, safe_unpickle, state, tf1
from tf_stylegan2.official.safe_unpickle import PersistentObject, TFNetwork

TF1_G = dict(resolution=8, num_channels=3, label_size=0, fmap_base=64, fmap_max=16, latent_size=8, dlatent_size=8,
             mapping_layers=2, mapping_fmaps=8)
TF1_D = dict(resolution=8, num_channels=3, label_size=0, fmap_base=64, fmap_max=16, mbstd_group_size=2)
ADA_G = dict(z_dim=8, c_dim=2, w_dim=8, img_resolution=8, img_channels=3, mapping_kwargs=dict(num_layers=2),
             synthesis_kwargs=dict(channel_base=64, channel_max=16, conv_clamp=256, num_fp16_res=1))
ADA_D = dict(c_dim=2, img_resolution=8, img_channels=3, channel_base=64, channel_max=16, cmap_dim=4,
             mapping_kwargs=dict(num_layers=1), epilogue_kwargs=dict(mbstd_group_size=2), block_kwargs=dict(freeze_layers=0))
ADA_TF_G = dict(resolution=8, num_channels=3, label_size=2, fmap_base=64, fmap_max=16, latent_size=8, dlatent_size=8,
                mapping_layers=2, label_fmaps=4, fmap_const=8, num_fp16_res=1, conv_clamp=256)
ADA_TF_D = dict(resolution=8, num_channels=3, label_size=2, fmap_base=64, fmap_max=16, mbstd_group_size=2,
                mapping_layers=1, num_fp16_res=1, conv_clamp=256, freeze_layers=0)
PICKLES = {"tf1": lambda: op.tf1_pickle(TF1_G, TF1_D), "ada": lambda: op.ada_pickle(ADA_G, ADA_D),
           "adatf": lambda: op.ada_tf_pickle(ADA_TF_G, ADA_TF_D)}


def decoded(kind):
    return safe_unpickle.load(io.BytesIO(PICKLES[kind]()[0]), kind)


def read(data):
    """What ``official.read`` does with an unpickled file."""
    return official.read_data(data, "mutated pickle").networks


# --- the decoded structure: where values live, how to copy and change one ----------------------


def clone(obj):
    """A copy of the containers and records (arrays are shared: mutations replace them, never write)."""
    if isinstance(obj, TFNetwork):
        out = TFNetwork()
        out.state = clone(obj.state)
        return out
    if isinstance(obj, PersistentObject):
        return PersistentObject(obj.class_name, clone(obj.state), obj.module_src)
    if isinstance(obj, dict):
        return {k: clone(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(clone(v) for v in obj)
    return obj


def children(obj):
    if isinstance(obj, (TFNetwork, PersistentObject)):
        obj = obj.state
    if isinstance(obj, dict):
        return list(obj.items())
    if isinstance(obj, (list, tuple)):
        return list(enumerate(obj))
    return []


def slots(obj, path=()):
    """Paths of every value in the structure (options, weights, records, containers) except the torch
    module bookkeeping the importers never read (hook tables, the training flag)."""
    for key, value in children(obj):
        if isinstance(key, str) and (key.endswith(("hooks", "_hook")) or key == "training"):
            continue
        yield path + (key,)
        yield from slots(value, path + (key,))


def replaced(obj, path, value):
    """``obj`` with the value at ``path`` replaced (tuples rebuilt on the way)."""
    if not path:
        return value
    target = obj.state if isinstance(obj, (TFNetwork, PersistentObject)) else obj
    head = path[0]
    if isinstance(target, tuple):
        return tuple(replaced(v, path[1:], value) if i == head else v for i, v in enumerate(target))
    target[head] = replaced(target[head], path[1:], value)
    return obj


def lookup(obj, path):
    for key in path:
        obj = (obj.state if isinstance(obj, (TFNetwork, PersistentObject)) else obj)[key]
    return obj


def mutants(value):
    """Values a careless or hostile writer could put in the place of ``value``."""
    out = [None, True, 0, -1, 1, 3, 2**31, 2**63, 10**30, 0.5, float("inf"), float("-inf"), float("nan"), "x", b"x",
           "lrelu\n", [], [1.0], {}, (1, 2), {"a": 1}, np.float32(2.0), np.int64(4), np.zeros(())]
    if isinstance(value, np.ndarray):
        flat = value.reshape(-1)
        out += [value[..., None], flat, flat[:0], value.astype(np.int64), value.astype(bool),
                value.astype(np.complex64), np.full(value.shape, np.nan, np.float32),
                np.full(value.shape, 1e30, np.float32), value.T, value.astype(np.float16), value.tolist()]
        if value.ndim:
            out += [value[..., :1], np.concatenate([value, value], axis=-1)]
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        out += [value * 2, -value, value + 0.5, str(value), [value], np.float64(value)]
    elif isinstance(value, (list, tuple)):
        out += [list(value)[:1], list(value) * 2, [[v] for v in value], [str(v) for v in value], tuple(value)]
    elif isinstance(value, str):
        out += [value + "x", value.upper(), ""]
    elif isinstance(value, dict):
        out += [dict(value, extra=1), {k: None for k in value}, list(value)]
    return out


class Importer:
    """Imports mutated data like ``official.read`` + ``NetworkState.build``; the Keras networks of the
    unmutated configs are built once and refilled, a changed config is built (a few times at most)."""

    def __init__(self, data, max_builds):
        self.base, self.models = read(data), {}
        self.builds_left = max_builds

    def __call__(self, data):
        for key, net in read(data).items():
            if net.config == self.base[key].config:
                if key not in self.models:
                    self.models[key] = self.base[key].build()
                model = self.models[key]
                pairs = (state._discriminator_pairs if key == "D" else state._generator_pairs)(model)
                state._assign(model, pairs, net.tensors, net.config.resample_filter, key)
            elif self.builds_left > 0:
                self.builds_left -= 1
                net.build()


@pytest.mark.parametrize("kind, count", [("tf1", 400), ("ada", 300), ("adatf", 300)])
def test_fuzzed_pickles_raise_only_user_errors(kind, count):
    """Seeded and bounded: ``count`` single-value mutations of the decoded test pickle."""
    data = decoded(kind)
    cases = [(path, m) for path in slots(data) for m in mutants(lookup(data, path))]
    rng = np.random.RandomState(0)
    importer = Importer(data, max_builds=2)
    outcomes, start = {"accepted": 0, "refused": 0}, time.process_time()
    for i in rng.permutation(len(cases))[:count]:
        path, value = cases[i]
        try:
            importer(replaced(clone(data), path, value))
            outcomes["accepted"] += 1
        except UserError as e:
            assert "\n" not in str(e), (path, value, e)
            outcomes["refused"] += 1
        except Exception as e:  # noqa: BLE001 - the point of the test
            pytest.fail(f"{type(e).__name__} escaped for {path} = {value!r:.80}: {e}")
    print(f"{kind}: {len(cases)} possible mutations, {count} run in {time.process_time() - start:.1f} s CPU: {outcomes}")
    assert outcomes["refused"] > count // 5 and outcomes["accepted"] > 0


# --- the cases the issue names, and the size check before building -------------------------------


def tf1_with(change=None, **options):
    data = decoded("tf1")
    for net in (data[0], data[2]):
        net.state["static_kwargs"].update(options)
    if change:
        change(data)
    return data


def set_variable(net, name, value):
    net.state["variables"] = [(n, value if n == name else v) for n, v in net.state["variables"]]


@pytest.mark.parametrize("data, message", [
    (lambda: tf1_with(fmap_base=None), r"G: option fmap_base=None is not supported \(expected an integer from 1 to"),
    (lambda: tf1_with(fmap_base=float("inf")), "option fmap_base=inf is not supported"),
    (lambda: tf1_with(fmap_max="32"), "option fmap_max='32' is not supported"),
    (lambda: tf1_with(fmap_decay=1e300), "option fmap_decay=1e.300 is not supported"),
    (lambda: tf1_with(mapping_layers=None), "option mapping_layers=None is not supported"),
    (lambda: tf1_with(resample_kernel="1331"), "option resample_kernel='1331' is not supported"),
    (lambda: tf1_with(resample_kernel=[1, -1]), r"resample_kernel=\[1, -1\] is not supported .*non-zero sum"),
    (lambda: tf1_with(dlatent_avg_beta=1.5), "option dlatent_avg_beta=1.5 is not supported"),
    (lambda: tf1_with(nonlinearity="gelu"), "option nonlinearity='gelu' is not supported"),
    (lambda: tf1_with(lambda d: set_variable(d[2].state["components"]["synthesis"], "noise0", np.zeros((4, 4), np.float32))),
     r"TF1 variable 'synthesis/noise0' has shape \[4, 4\], expected \[1, 1, ...\]"),
    (lambda: tf1_with(lambda d: set_variable(d[2].state["components"]["mapping"], "Dense0/weight", np.zeros(8, np.float32))),
     r"TF1 variable 'mapping/Dense0/weight' has shape \[8\], expected 2 axes"),
    (lambda: tf1_with(lambda d: set_variable(d[2], "dlatent_avg", np.zeros(8, np.int32))), "is int32, not a floating-point tensor"),
])
def test_bad_tf1_values_are_named(data, message):
    with pytest.raises(UserError, match=message):
        tf1.read_tf1(data())


def ada_with(change):
    data = decoded("ada")
    change(data)
    return data


def init_kwargs(data, key):
    return data[key].state["_init_kwargs"]


@pytest.mark.parametrize("change, message", [
    (lambda d: init_kwargs(d, "G_ema")["synthesis_kwargs"].update(conv_clamp="x"), "option conv_clamp='x' is not supported"),
    (lambda d: init_kwargs(d, "G_ema")["synthesis_kwargs"].update(channel_base=None), "option channel_base=None"),
    (lambda d: init_kwargs(d, "G_ema")["mapping_kwargs"].update(w_avg_beta=2.0), "option mapping.w_avg_beta=2.0"),
    (lambda d: init_kwargs(d, "G_ema").update(img_resolution=12), "option img_resolution=12 .* power of two"),
    (lambda d: init_kwargs(d, "D").update(cmap_dim=-4), "option cmap_dim=-4"),
    (lambda d: init_kwargs(d, "D")["epilogue_kwargs"].update(mbstd_num_channels=2.5), "option mbstd_num_channels=2.5"),
    (lambda d: init_kwargs(d, "G_ema")["synthesis_kwargs"].update(resample_filter=[[1, 3], [3, 1]]),
     r"option resample_filter\[0\]=\[1, 3\] is not supported"),
    (lambda d: d["G_ema"].state["_modules"]["mapping"].state.update(_non_persistent_buffers_set=True),
     "malformed _non_persistent_buffers_set"),
    (lambda d: d["G_ema"].state["_modules"]["synthesis"].state["_modules"].update(loop=d["G_ema"]), "contains itself"),
    (lambda d: d["G_ema"].state["_modules"]["mapping"].state["_buffers"].update(w_avg=np.arange(8)),
     "'mapping.w_avg' is int64, not a floating-point tensor"),
])
def test_bad_ada_values_are_named(change, message):
    with pytest.raises(UserError, match=message):
        ada_pytorch.read_ada(ada_with(change))


def test_a_weight_of_the_wrong_rank_is_named_when_building():
    """A scalar where D's fc matrix belongs (found by an exhaustive run of the mutations above)."""
    fc = lambda d: d["D"].state["_modules"]["b4"].state["_modules"]["fc"].state["_parameters"]  # noqa: E731
    net = ada_pytorch.read_ada(ada_with(lambda d: fc(d).update(weight=np.zeros((), np.float32))))["D"]
    with pytest.raises(UserError, match=r"D: official weight 'b4.fc.weight' has shape \[\], which does not fit"):
        net.build()


def test_options_beyond_the_weights_are_refused_before_building():
    """channel_max 65536 would make a 150 GB convolution; the file holds a few thousand values."""
    data = ada_with(lambda d: init_kwargs(d, "G_ema")["synthesis_kwargs"].update(channel_base=1 << 30, channel_max=1 << 16))
    net = ada_pytorch.read_ada(data)["G_ema"]
    with pytest.raises(UserError, match=r"G_ema: its options describe a network of [\d,]+ values, but the file holds only"):
        net.build()


CONFIGS = [
    GeneratorConfig(img_resolution=16, z_dim=8, w_dim=12, channel_base=128, channel_max=16,
                    mapping=MappingConfig(num_layers=2)),
    GeneratorConfig(img_resolution=8, z_dim=8, c_dim=3, w_dim=12, channel_base=128, channel_max=16, architecture="resnet",
                    use_noise=False, mapping=MappingConfig(num_layers=2, embed_features=5, layer_features=7, w_avg_beta=None)),
    GeneratorConfig(img_resolution=4, img_channels=1, z_dim=4, c_dim=2, w_dim=6, channel_base=64, channel_max=8,
                    architecture="orig", mapping=MappingConfig(num_layers=1)),
    GeneratorConfig(img_resolution=8, z_dim=4, c_dim=2, w_dim=6, channel_base=64, channel_max=8, const_channels=5,
                    mapping=MappingConfig(num_layers=0, embed_features=2)),
    DiscriminatorConfig(img_resolution=16, channel_base=128, channel_max=16, mbstd_num_channels=3),
    DiscriminatorConfig(img_resolution=8, c_dim=3, architecture="skip", channel_base=128, channel_max=16, cmap_dim=6,
                        mapping=MappingConfig(num_layers=2, embed_features=4, w_avg_beta=None)),
    DiscriminatorConfig(img_resolution=4, c_dim=2, architecture="orig", channel_base=64, channel_max=8,
                        mbstd_num_channels=0, mapping=MappingConfig(num_layers=1, w_avg_beta=None)),
    DiscriminatorConfig(img_resolution=8, c_dim=3, channel_base=64, channel_max=8, cmap_dim=5,
                        mapping=MappingConfig(num_layers=0, embed_features=5, w_avg_beta=None)),
]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: f"{type(c).__name__}-{c.architecture}-{c.img_resolution}")
def test_parameter_count_is_what_the_network_holds(config):
    model = (Generator if isinstance(config, GeneratorConfig) else Discriminator)(config)
    assert state.parameter_count(config) == sum(int(np.prod(v.shape)) for v in model.weights)


def test_parameter_count_of_config_f_is_nvidias():
    """stylegan2-ada-pytorch's config F at 1024: G 30,370,060 parameters (plus w_avg and the noise
    buffers, which our count includes), D 29,012,513."""
    preset = PRESETS["config-f"]
    g = GeneratorConfig(img_resolution=1024, channel_base=preset.channel_base, channel_max=preset.channel_max)
    buffers = 512 + 4 * 4 + 2 * sum((2**k) ** 2 for k in range(3, 11))
    assert state.parameter_count(g) - buffers == 30_370_060
    assert state.parameter_count(DiscriminatorConfig(img_resolution=1024)) == 29_012_513
