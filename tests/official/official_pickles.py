"""Writers of exact-format NVIDIA network pickles from random weights, without NVIDIA's code.

The streams reproduce what NVIDIA's programs write, opcode for opcode in structure:

* TF1: ``pickle.dump((G, D, Gs))`` of ``dnnlib.tflib.network.Network`` objects: NEWOBJ of the
  class, then BUILD with the dict of ``Network.__getstate__`` (version 4, name, static_kwargs,
  components, build_module_src, build_func_name, variables as (name, numpy array) pairs). Arrays
  are written as numpy 1.x does (``numpy.core.multiarray._reconstruct`` + BUILD), 0-d variables
  as numpy scalars, protocol 3 by default (Python 3.6/3.7, the release's environment).
* stylegan2-ada TF: the same tuple, written by its training loop; its ``Network.__getstate__``
  writes version 5 and adds ``input_shapes``, ``output_shapes``, ``input_names``,
  ``output_names``. Variables are named as ``training/networks.py`` creates them (``LabelEmbed``,
  ``Mapping<i>`` in a conditional D), in its order of creation.
* stylegan2-ada-pytorch: ``pickle.dump(snapshot_dict)`` where every module reduces to
  ``torch_utils.persistence._reconstruct_persistent_obj(meta)`` (meta: type, version, module_src,
  class_name, state = the module's ``__dict__``), parameters to
  ``torch._utils._rebuild_parameter(torch._utils._rebuild_tensor_v2(storage, offset, size,
  stride, requires_grad, OrderedDict()), requires_grad, OrderedDict())`` and each storage to
  ``torch.storage._load_from_bytes(<legacy torch.save stream>)``; protocol 4.

Globals are written by name (:class:`Global`), so nothing here imports numpy's private modules,
torch, dnnlib or torch_utils.
"""

from __future__ import annotations

import collections
import functools
import io
import pickle
from typing import Any, Dict, Iterable, Optional, Tuple

import numpy as np


class Global:
    """A reference to ``module.name`` written into the stream without importing it."""

    def __init__(self, module: str, name: str):
        self.module, self.name = module, name

    def __call__(self, *args):  # never called; pickle's reduce protocol wants callables
        raise TypeError("a Global only names an object in a pickle stream")


class Reduce:
    """An object written as ``func(*args)``, then SETITEMS ``dictitems`` and BUILD ``state``."""

    def __init__(self, func: Global, args: tuple, state: Any = None, dictitems: Optional[dict] = None):
        self.func, self.args, self.state, self.dictitems = func, args, state, dictitems


class NewObj(Reduce):
    """An object written as ``cls.__new__(cls)`` (NEWOBJ), then SETITEMS / BUILD."""


class Writer(pickle._Pickler):  # the Python pickler: its dispatch table can be extended
    dispatch = dict(pickle._Pickler.dispatch)

    def save_global_ref(self, obj: Global) -> None:
        if self.proto >= 4:
            self.save(obj.module)
            self.save(obj.name)
            self.write(pickle.STACK_GLOBAL)
        else:
            self.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode("utf-8"))
        self.memoize(obj)

    def save_reduce_obj(self, obj: Reduce) -> None:
        self.save(obj.func)
        self.save(tuple(obj.args))
        self.write(pickle.NEWOBJ if isinstance(obj, NewObj) else pickle.REDUCE)
        self.memoize(obj)
        if obj.dictitems:
            self._batch_setitems(iter(obj.dictitems.items()))
        if obj.state is not None:
            self.save(obj.state)
            self.write(pickle.BUILD)

    dispatch[Global] = save_global_ref
    dispatch[Reduce] = save_reduce_obj
    dispatch[NewObj] = save_reduce_obj


def dumps(obj: Any, protocol: int, persistent_id=None) -> bytes:
    f = io.BytesIO()
    w = Writer(f, protocol)
    if persistent_id is not None:
        w.persistent_id = persistent_id
    w.dump(obj)
    return f.getvalue()


# --- numpy as numpy 1.x pickles it ----------------------------------------------------------------

NP_RECONSTRUCT = Global("numpy.core.multiarray", "_reconstruct")
NP_NDARRAY = Global("numpy", "ndarray")
NP_DTYPE = Global("numpy", "dtype")
NP_SCALAR = Global("numpy.core.multiarray", "scalar")


def np_dtype(dtype: np.dtype) -> Reduce:
    order = "|" if dtype.itemsize == 1 else "<"
    return Reduce(NP_DTYPE, (dtype.str[1:], False, True), state=(3, order, None, None, None, -1, -1, 0))


def np_array(a: np.ndarray) -> Reduce:
    a = np.array(a, order="C")  # (ascontiguousarray would make 0-d arrays 1-d)
    return Reduce(NP_RECONSTRUCT, (NP_NDARRAY, (0,), b"b"), state=(1, a.shape, np_dtype(a.dtype), False, a.tobytes()))


def np_scalar(x: np.generic) -> Reduce:
    return Reduce(NP_SCALAR, (np_dtype(x.dtype), x.tobytes()))


def randn(rng: np.random.RandomState, *shape: int, scale: float = 1.0) -> np.ndarray:
    return np.asarray(rng.randn(*shape) * scale, np.float32)


# --- TF1 and stylegan2-ada TF ----------------------------------------------------------------------

TF_NETWORK = Global("dnnlib.tflib.network", "Network")
TF1_SOURCE = "# networks_stylegan2.py would be here; a reader must never execute it\n"
ADA_TF_SOURCE = "# stylegan2-ada's training/networks.py would be here; a reader must never execute it\n"

# The build functions' defaults where the writers need them: StyleGAN2's networks_stylegan2.py and
# stylegan2-ada's training/networks.py.
TF1_G = dict(latent_size=512, label_size=0, dlatent_size=512, mapping_layers=8, mapping_fmaps=512, fmap_base=16 << 10,
             fmap_max=512, architecture="skip", num_channels=3)
ADA_TF_G = dict(TF1_G, mapping_fmaps=None, label_fmaps=None, fmap_base=16384, fmap_const=None, use_noise=True)
TF1_D = dict(label_size=0, fmap_base=16 << 10, fmap_max=512, architecture="resnet", num_channels=3,
             mbstd_group_size=4, mbstd_num_features=1)
ADA_TF_D = dict(TF1_D, fmap_base=16384, mbstd_group_size=None, mapping_layers=0, mapping_fmaps=None)
# G_main's own parameters: the other kwargs reach its sub-networks (NVIDIA's G_main passes **kwargs on).
G_MAIN_PARAMETERS = {"is_training", "is_validation", "return_dlatents", "truncation_psi", "truncation_cutoff",
                     "truncation_psi_val", "truncation_cutoff_val", "dlatent_avg_beta", "style_mixing_prob",
                     "mapping_func", "synthesis_func"}


def tf_network(name: str, func: str, static_kwargs: dict, variables: Dict[str, np.ndarray], components=None,
               source: str = TF1_SOURCE, version: int = 4, io: Optional[dict] = None) -> NewObj:
    """``Network.__getstate__``: version 4 (StyleGAN2) or 5 (stylegan2-ada, which adds ``io``: the
    input/output shapes and names)."""
    state = dict(
        version=version, name=name, static_kwargs=dict(static_kwargs), components=dict(components or {}),
        build_module_src=source, build_func_name=func,
        variables=[(k, np_scalar(v[()]) if v.ndim == 0 else np_array(v)) for k, v in variables.items()],
    )
    if version >= 5:
        state.update(io or {})
    return NewObj(TF_NETWORK, (), state=state)


def _nf(kw: dict):
    return lambda stage: int(np.clip(int(kw["fmap_base"] / 2.0**stage), 1, kw["fmap_max"]))


def tf_generator_variables(kw: dict, rng: np.random.RandomState, ada: bool = False) -> Dict[str, Dict[str, np.ndarray]]:
    """Random variables of G_main / G_mapping / G_synthesis(_stylegan2), by component, in TF layouts and
    in the order NVIDIA's code creates them; ``ada``: stylegan2-ada's options (labels, fmap_const,
    use_noise), otherwise StyleGAN2's (labels not written: that importer refuses them first)."""
    kw = {**(ADA_TF_G if ada else TF1_G), **kw}
    log2 = int(np.log2(kw["resolution"]))
    z, w, arch, layers = kw["latent_size"], kw["dlatent_size"], kw["architecture"], kw["mapping_layers"]
    labels, noise, nf = kw["label_size"] if ada else 0, kw.get("use_noise", True), _nf(kw)

    f32 = functools.partial(randn, rng)
    mapping = {}
    embed = (kw["label_fmaps"] or z) if labels else 0
    if labels:
        mapping["LabelEmbed/weight"], mapping["LabelEmbed/bias"] = f32(labels, embed), f32(embed, scale=0.5)
    n_in = z + embed
    for i in range(layers):
        n_out = w if i == layers - 1 else (kw["mapping_fmaps"] or w)
        mapping[f"Dense{i}/weight"], mapping[f"Dense{i}/bias"] = f32(n_in, n_out, scale=100.0), f32(n_out, scale=20.0)
        n_in = n_out
    syn = {f"noise{i}": f32(1, 1, 2 ** ((i + 5) // 2), 2 ** ((i + 5) // 2)) for i in range(2 * log2 - 3) if noise}

    def layer(scope, k, cin, cout, rgb=False):  # ToRGB weights are small: images about [-1, 1]
        syn[f"{scope}/weight"] = f32(k, k, cin, cout, scale=0.1 if rgb else 1.0)
        syn[f"{scope}/mod_weight"], syn[f"{scope}/mod_bias"] = f32(w, cin), f32(cin, scale=0.5)
        if noise and not rgb:
            syn[f"{scope}/noise_strength"] = f32(scale=0.5)
        syn[f"{scope}/bias"] = f32(cout, scale=0.5)

    const = kw.get("fmap_const") or nf(1)
    syn["4x4/Const/const"] = f32(1, const, 4, 4)
    layer("4x4/Conv", 3, const, nf(1))
    if arch == "skip":
        layer("4x4/ToRGB", 1, nf(1), kw["num_channels"], rgb=True)
    for k in range(3, log2 + 1):
        r = f"{2**k}x{2**k}"
        layer(f"{r}/Conv0_up", 3, nf(k - 2), nf(k - 1))
        layer(f"{r}/Conv1", 3, nf(k - 1), nf(k - 1))
        if arch == "resnet":
            syn[f"{r}/Skip/weight"] = f32(1, 1, nf(k - 2), nf(k - 1))
        if arch == "skip" or k == log2:
            layer(f"{r}/ToRGB", 1, nf(k - 1), kw["num_channels"], rgb=True)
    own = {"dlatent_avg": f32(w, scale=0.5)} if ada else {"lod": np.zeros((), np.float32), "dlatent_avg": f32(w, scale=0.5)}
    return {"": own, "mapping": mapping, "synthesis": syn}


def tf_discriminator_variables(kw: dict, rng: np.random.RandomState, ada: bool = False) -> Dict[str, np.ndarray]:
    """Random variables of D_stylegan2 (StyleGAN2) or D_main (``ada``, with its label mapping)."""
    kw = {**(ADA_TF_D if ada else TF1_D), **kw}
    log2, arch, nf = int(np.log2(kw["resolution"])), kw["architecture"], _nf(kw)
    labels = kw["label_size"] if ada else 0
    cmap = (kw["mapping_fmaps"] or nf(0)) if labels else 0
    v = {}

    def conv(scope, k, cin, cout, bias=True):
        v[f"{scope}/weight"] = rng.randn(k, k, cin, cout).astype(np.float32)
        if bias:
            v[f"{scope}/bias"] = (rng.randn(cout) * 0.5).astype(np.float32)

    if labels:  # D_main maps the label before the blocks
        v["LabelEmbed/weight"], v["LabelEmbed/bias"] = randn(rng, labels, cmap), randn(rng, cmap, scale=0.5)
        for i in range(kw["mapping_layers"]):  # equalized with lrmul 0.1 by default: stored about 1 / lrmul
            v[f"Mapping{i}/weight"], v[f"Mapping{i}/bias"] = randn(rng, cmap, cmap, scale=10.0), randn(rng, cmap, scale=2.0)
    for k in range(log2, 2, -1):
        r = f"{2**k}x{2**k}"
        if arch == "skip" or k == log2:
            conv(f"{r}/FromRGB", 1, kw["num_channels"], nf(k - 1))
        conv(f"{r}/Conv0", 3, nf(k - 1), nf(k - 1))
        conv(f"{r}/Conv1_down", 3, nf(k - 1), nf(k - 2))
        if arch == "resnet":
            conv(f"{r}/Skip", 1, nf(k - 1), nf(k - 2), bias=False)
    if arch == "skip":
        conv("4x4/FromRGB", 1, kw["num_channels"], nf(1))
    if ada:
        mbstd = kw["mbstd_num_features"]
    else:
        mbstd = kw["mbstd_num_features"] if kw["mbstd_group_size"] > 1 else 0
    conv("4x4/Conv", 3, nf(1) + mbstd, nf(1))
    v["4x4/Dense0/weight"], v["4x4/Dense0/bias"] = rng.randn(nf(1) * 16, nf(0)).astype(np.float32), rng.randn(nf(0)).astype(np.float32)
    v["Output/weight"], v["Output/bias"] = rng.randn(nf(0), cmap or 1).astype(np.float32), rng.randn(cmap or 1).astype(np.float32)
    return v


def _io(inputs: Dict[str, list], outputs: Dict[str, list]) -> dict:
    """Network.input_shapes / output_shapes / input_names / output_names (version 5)."""
    return dict(input_shapes=list(inputs.values()), output_shapes=list(outputs.values()),
                input_names=list(inputs), output_names=list(outputs))


def _tf_pickle(g_kwargs: dict, d_kwargs: dict, seed: int, protocol: int, g_func: str, d_func: str, synthesis_func: str,
               source: str, ada: bool) -> Tuple[bytes, dict]:
    rng = np.random.RandomState(seed)
    nets, flat = [], {}
    g_all = {**(ADA_TF_G if ada else TF1_G), **g_kwargs}
    res, c, labels = g_all["resolution"], g_all["num_channels"], g_all["label_size"]
    num_ws, image = 2 * int(np.log2(res)) - 2, [None, c, res, res]
    version = 5 if ada else 4
    # Sub-networks get G's kwargs without G_main's own (StyleGAN2's writer passed them all: harmless).
    sub_kwargs = {k: v for k, v in g_kwargs.items() if k not in G_MAIN_PARAMETERS} if ada else dict(g_kwargs)
    for name in ("G", "D", "Gs"):
        if name == "D":
            v = tf_discriminator_variables(d_kwargs, rng, ada)
            io = _io({"images_in": image, "labels_in": [None, d_kwargs.get("label_size", 0)]}, {"scores_out": [None, 1]})
            nets.append(tf_network(name, d_func, d_kwargs, v, source=source, version=version, io=io))
            flat[name] = v
            continue
        groups = tf_generator_variables(g_kwargs, rng, ada)
        z, w = [None, g_all["latent_size"]], [None, num_ws, g_all["dlatent_size"]]
        comps = {
            "mapping": tf_network(f"{name}_mapping", "G_mapping", {**sub_kwargs, "dlatent_broadcast": num_ws},
                                  groups["mapping"], source=source, version=version,
                                  io=_io({"latents_in": z, "labels_in": [None, labels]}, {"dlatents_out": w})),
            "synthesis": tf_network(f"{name}_synthesis", synthesis_func, sub_kwargs, groups["synthesis"], source=source,
                                    version=version, io=_io({"dlatents_in": w}, {"images_out": image})),
        }
        io = _io({"latents_in": z, "labels_in": [None, labels]}, {"images_out": image})
        nets.append(tf_network(name, g_func, g_kwargs, groups[""], comps, source=source, version=version, io=io))
        flat[name] = {(f"{p}/" if p else "") + k: val for p, group in groups.items() for k, val in group.items()}
    return dumps(tuple(nets), protocol), flat


def tf1_pickle(g_kwargs: dict, d_kwargs: dict, seed: int = 0, protocol: int = 3, g_func: str = "G_main",
               d_func: str = "D_stylegan2", source: str = TF1_SOURCE) -> Tuple[bytes, dict]:
    """A StyleGAN2 (G, D, Gs) pickle and the variables it holds: {'G': {full name: array}, 'D': ..., 'Gs': ...}."""
    return _tf_pickle(g_kwargs, d_kwargs, seed, protocol, g_func, d_func, "G_synthesis_stylegan2", source, ada=False)


def ada_tf_pickle(g_kwargs: dict, d_kwargs: dict, seed: int = 0, protocol: int = 3, g_func: str = "G_main",
                  d_func: str = "D_main", synthesis_func: str = "G_synthesis",
                  source: str = ADA_TF_SOURCE) -> Tuple[bytes, dict]:
    """A stylegan2-ada TF (G, D, Gs) pickle, as its training loop's ``pickle.dump((G, D, Gs), f)`` writes
    it (Python 3.7: protocol 3; Network state version 5), and the variables it holds."""
    return _tf_pickle(g_kwargs, d_kwargs, seed, protocol, g_func, d_func, synthesis_func, source, ada=True)


# --- stylegan2-ada-pytorch ------------------------------------------------------------------------

PERSISTENT = Global("torch_utils.persistence", "_reconstruct_persistent_obj")
REBUILD_TENSOR = Global("torch._utils", "_rebuild_tensor_v2")
REBUILD_PARAMETER = Global("torch._utils", "_rebuild_parameter")
LOAD_FROM_BYTES = Global("torch.storage", "_load_from_bytes")
EASYDICT = Global("dnnlib.util", "EasyDict")
ADA_SOURCE = "# training/networks.py would be here; a reader must never execute it\n"
TORCH_MAGIC, TORCH_PROTOCOL = 0x1950A86A20F9469CFC6C, 1001
_STORAGE_TYPES = {np.dtype("float32"): "FloatStorage", np.dtype("float16"): "HalfStorage", np.dtype("int64"): "LongStorage"}


class _StorageMark:
    pass


def torch_storage_bytes(flat: np.ndarray, key: str = "94374005036816", storage_type: Optional[str] = None) -> bytes:
    """The legacy torch.save stream of one storage, as ``TypedStorage.__reduce__`` embeds it."""
    mark = _StorageMark()
    sys_info = dict(protocol_version=TORCH_PROTOCOL, little_endian=True, type_sizes=dict(short=2, int=4, long=4))
    pid = ("storage", Global("torch", storage_type or _STORAGE_TYPES[flat.dtype]), key, "cpu", flat.size, None)
    out = dumps(TORCH_MAGIC, 2) + dumps(TORCH_PROTOCOL, 2) + dumps(sys_info, 2)
    out += dumps(mark, 2, persistent_id=lambda obj: pid if obj is mark else None) + dumps([key], 2)
    return out + np.int64(flat.size).tobytes() + np.ascontiguousarray(flat).tobytes()


def torch_tensor(a: np.ndarray, parameter: bool = True) -> Reduce:
    """A contiguous tensor (or Parameter) over its own storage."""
    a = np.array(a, order="C")  # (ascontiguousarray would make 0-d arrays 1-d)
    stride = tuple(int(s // a.itemsize) for s in a.strides) if a.ndim else ()
    storage = Reduce(LOAD_FROM_BYTES, (torch_storage_bytes(a.reshape(-1)),))
    tensor = Reduce(REBUILD_TENSOR, (storage, 0, a.shape, stride, False, collections.OrderedDict()))
    return Reduce(REBUILD_PARAMETER, (tensor, False, collections.OrderedDict())) if parameter else tensor


def easydict(d: dict) -> NewObj:
    return NewObj(EASYDICT, (), dictitems={k: easydict(v) if isinstance(v, dict) else v for k, v in d.items()})


_BUFFERS = ("resample_filter", "noise_const", "w_avg")
_HOOKS = ("_backward_pre_hooks", "_backward_hooks", "_forward_hooks", "_forward_hooks_with_kwargs",
          "_forward_hooks_always_called", "_forward_pre_hooks", "_forward_pre_hooks_with_kwargs",
          "_state_dict_hooks", "_state_dict_pre_hooks", "_load_state_dict_pre_hooks", "_load_state_dict_post_hooks")


def persistent_module(class_name: str, tensors: Dict[str, np.ndarray], children: Dict[str, Reduce],
                      attrs: Optional[dict] = None, init_kwargs: Optional[dict] = None, source: str = ADA_SOURCE) -> Reduce:
    state = {"training": False}
    state["_parameters"] = {k: torch_tensor(v) for k, v in tensors.items() if k not in _BUFFERS}
    state["_buffers"] = {k: torch_tensor(v, parameter=False) for k, v in tensors.items() if k in _BUFFERS}
    state["_non_persistent_buffers_set"] = set()
    state.update({h: collections.OrderedDict() for h in _HOOKS})
    state["_is_full_backward_hook"] = None
    state["_modules"] = dict(children)
    state.update(attrs or {})
    state["_init_args"], state["_init_kwargs"] = (), dict(init_kwargs or {})
    meta = dict(type="class", version=6, module_src=source, class_name=class_name, state=state)
    return Reduce(PERSISTENT, (meta,))


def _class_name(path: str) -> str:
    last = path.split(".")[-1]
    if last in ("mapping",):
        return "MappingNetwork"
    if last == "synthesis":
        return "SynthesisNetwork"
    if last.startswith("fc") or last in ("affine", "embed", "out"):
        return "FullyConnectedLayer"
    if last == "torgb":
        return "ToRGBLayer"
    if last == "mbstd":
        return "MinibatchStdLayer"
    if last == "b4" and not path.startswith("synthesis"):
        return "DiscriminatorEpilogue"
    if last.startswith("b"):
        return "SynthesisBlock" if path.startswith("synthesis") else "DiscriminatorBlock"
    if last in ("conv0", "conv1") and path.startswith("synthesis"):
        return "SynthesisLayer"
    return "Conv2dLayer"


def module_tree(class_name: str, state_dict: Dict[str, np.ndarray], init_kwargs: dict, source: str = ADA_SOURCE,
                empty: Iterable[str] = ()) -> Reduce:
    """A persistent module tree holding a flat ``state_dict``, as ``training/networks.py`` builds it;
    ``empty`` names modules without tensors (e.g. the minibatch-std layer)."""

    def build(prefix: str, names: Iterable[str]) -> Tuple[Dict[str, np.ndarray], Dict[str, Reduce]]:
        own, groups = {}, collections.OrderedDict()
        for name in names:
            if name in empty_here.get(prefix, ()):
                groups.setdefault(name, [])
                continue
            head, _, rest = name.partition(".")
            if rest:
                groups.setdefault(head, []).append(rest)
            else:
                own[head] = state_dict[prefix + name]
        children = {}
        for head, rest in groups.items():
            t, c = build(f"{prefix}{head}.", rest)
            attrs = {"weight_gain": np.float64(1.0)} if _class_name(prefix + head) == "FullyConnectedLayer" else {}
            children[head] = persistent_module(_class_name(prefix + head), t, c, _scalars(attrs), source=source)
        return own, children

    empty_here: Dict[str, list] = {}
    for path in empty:
        parent, _, name = path.rpartition(".")
        empty_here.setdefault(parent + "." if parent else "", []).append(name)
    own, children = build("", list(state_dict) + list(empty))
    attrs = {k: v for k, v in init_kwargs.items() if not isinstance(v, dict)}  # z_dim, img_resolution, ...
    return persistent_module(class_name, own, children, attrs, _kwargs(init_kwargs), source)


def _scalars(attrs: dict) -> dict:
    return {k: np_scalar(v) if isinstance(v, np.generic) else v for k, v in attrs.items()}


def _kwargs(kwargs: dict) -> dict:
    return {k: easydict(v) if isinstance(v, dict) else v for k, v in kwargs.items()}


def _resample(taps=(1, 3, 3, 1)) -> np.ndarray:
    f = np.outer(taps, taps).astype(np.float32)
    return f / f.sum()


def ada_generator_state(kw: dict, rng: np.random.RandomState) -> Dict[str, np.ndarray]:
    """A random state_dict of stylegan2-ada-pytorch's Generator(**kw)."""
    m, s = kw.get("mapping_kwargs", {}), kw.get("synthesis_kwargs", {})
    z, c, w = kw["z_dim"], kw["c_dim"], kw["w_dim"]
    log2 = int(np.log2(kw["img_resolution"]))
    arch = s.get("architecture", "skip")
    ch = lambda r: min(s.get("channel_base", 32768) // r, s.get("channel_max", 512))  # noqa: E731
    f32 = functools.partial(randn, rng)
    sd = {}
    embed = (m.get("embed_features") or w) if c else 0
    feats = [z + embed] + [m.get("layer_features") or w] * (m.get("num_layers", 8) - 1) + [w]
    if c:
        sd["mapping.embed.weight"], sd["mapping.embed.bias"] = f32(embed, c), f32(embed, scale=0.5)
    for i in range(m.get("num_layers", 8)):
        sd[f"mapping.fc{i}.weight"], sd[f"mapping.fc{i}.bias"] = f32(feats[i + 1], feats[i], scale=100.0), f32(feats[i + 1], scale=20.0)
    sd["mapping.w_avg"] = f32(w, scale=0.5)

    def layer(p, cin, cout, res):
        sd[f"{p}.weight"], sd[f"{p}.noise_strength"], sd[f"{p}.bias"] = f32(cout, cin, 3, 3), f32(scale=0.5), f32(cout, scale=0.5)
        sd[f"{p}.resample_filter"], sd[f"{p}.noise_const"] = _resample(s.get("resample_filter", (1, 3, 3, 1))), f32(res, res)
        sd[f"{p}.affine.weight"], sd[f"{p}.affine.bias"] = f32(cin, w), (1 + rng.randn(cin) * 0.5).astype(np.float32)

    for k in range(2, log2 + 1):
        r, p = 2**k, f"synthesis.b{2**k}"
        if k == 2:
            sd[f"{p}.const"] = f32(ch(4), 4, 4)
        sd[f"{p}.resample_filter"] = _resample(s.get("resample_filter", (1, 3, 3, 1)))
        if k > 2:
            layer(f"{p}.conv0", ch(r // 2), ch(r), r)
        layer(f"{p}.conv1", ch(r), ch(r), r)
        if arch == "skip" or k == log2:
            sd[f"{p}.torgb.weight"] = f32(kw["img_channels"], ch(r), 1, 1, scale=0.1)  # images about [-1, 1]
            sd[f"{p}.torgb.bias"] = f32(kw["img_channels"], scale=0.2)
            sd[f"{p}.torgb.affine.weight"], sd[f"{p}.torgb.affine.bias"] = f32(ch(r), w), (1 + rng.randn(ch(r)) * 0.5).astype(np.float32)
        if arch == "resnet" and k > 2:
            sd[f"{p}.skip.weight"], sd[f"{p}.skip.resample_filter"] = f32(ch(r), ch(r // 2), 1, 1), _resample(s.get("resample_filter", (1, 3, 3, 1)))
    return sd


def ada_discriminator_state(kw: dict, rng: np.random.RandomState) -> Dict[str, np.ndarray]:
    """A random state_dict of stylegan2-ada-pytorch's Discriminator(**kw)."""
    log2 = int(np.log2(kw["img_resolution"]))
    arch, m, e = kw.get("architecture", "resnet"), kw.get("mapping_kwargs", {}), kw.get("epilogue_kwargs", {})
    taps = kw.get("block_kwargs", {}).get("resample_filter", (1, 3, 3, 1))
    ch = lambda r: min(kw.get("channel_base", 32768) // r, kw.get("channel_max", 512))  # noqa: E731
    sd = {}

    def conv(p, cin, cout, k, bias=True):
        sd[f"{p}.weight"] = rng.randn(cout, cin, k, k).astype(np.float32)
        if bias:
            sd[f"{p}.bias"] = (rng.randn(cout) * 0.5).astype(np.float32)
        sd[f"{p}.resample_filter"] = _resample(taps)

    for k in range(log2, 2, -1):
        r, p = 2**k, f"b{2**k}"
        if arch == "skip" or k == log2:
            conv(f"{p}.fromrgb", kw["img_channels"], ch(r), 1)
        conv(f"{p}.conv0", ch(r), ch(r), 3)
        conv(f"{p}.conv1", ch(r), ch(r // 2), 3)
        if arch == "resnet":
            conv(f"{p}.skip", ch(r), ch(r // 2), 1, bias=False)
        sd[f"{p}.resample_filter"] = _resample(taps)
    cmap = (kw.get("cmap_dim") or ch(4)) if kw["c_dim"] else 0
    if kw["c_dim"]:
        embed, hidden = m.get("embed_features") or cmap, m.get("layer_features") or cmap
        feats = [embed] + [hidden] * (m.get("num_layers", 8) - 1) + [cmap]
        sd["mapping.embed.weight"], sd["mapping.embed.bias"] = rng.randn(embed, kw["c_dim"]).astype(np.float32), rng.randn(embed).astype(np.float32)
        for i in range(m.get("num_layers", 8)):
            sd[f"mapping.fc{i}.weight"] = (rng.randn(feats[i + 1], feats[i]) * 100).astype(np.float32)
            sd[f"mapping.fc{i}.bias"] = (rng.randn(feats[i + 1]) * 20).astype(np.float32)
    if arch == "skip":
        conv("b4.fromrgb", kw["img_channels"], ch(4), 1)
    conv("b4.conv", ch(4) + e.get("mbstd_num_channels", 1), ch(4), 3)
    sd["b4.fc.weight"], sd["b4.fc.bias"] = rng.randn(ch(4), ch(4) * 16).astype(np.float32), rng.randn(ch(4)).astype(np.float32)
    sd["b4.out.weight"] = rng.randn(cmap or 1, ch(4)).astype(np.float32)
    sd["b4.out.bias"] = rng.randn(cmap or 1).astype(np.float32)
    return sd


def ada_pickle(g_kwargs: dict, d_kwargs: dict, seed: int = 0, source: str = ADA_SOURCE) -> Tuple[bytes, dict]:
    """A network-snapshot pickle and the state_dicts it holds: {'G': sd, 'D': sd, 'G_ema': sd}."""
    rng = np.random.RandomState(seed)
    sds = {"G": ada_generator_state(g_kwargs, rng), "D": ada_discriminator_state(d_kwargs, rng),
           "G_ema": ada_generator_state(g_kwargs, rng)}
    snapshot = {"training_set_kwargs": {"class_name": "training.dataset.ImageFolderDataset", "path": "data.zip"}}
    mbstd = ("b4.mbstd",) if d_kwargs.get("epilogue_kwargs", {}).get("mbstd_num_channels", 1) else ()
    for key, cls, kw in (("G", "Generator", g_kwargs), ("D", "Discriminator", d_kwargs), ("G_ema", "Generator", g_kwargs)):
        snapshot[key] = module_tree(cls, sds[key], kw, source, empty=mbstd if key == "D" else ())
    snapshot["augment_pipe"] = None
    return dumps(snapshot, 4), sds
