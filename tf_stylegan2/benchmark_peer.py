"""The benchmark's worker protocol, and its peer driver: NVIDIA's stylegan2-ada-pytorch, timed the way
:mod:`tf_stylegan2.benchmark` times ours.

Run as a script by a Python that has PyTorch (it imports nothing of this project, and no
TensorFlow)::

    <torch python> tf_stylegan2/benchmark_peer.py '<json spec>'

The spec names the checkout (``peer``: a path to a stylegan2-ada-pytorch work tree, whose modules
are imported from there at run time), the work (``generator`` or ``training``) and the network.
Nothing is downloaded, compiled or written. On a machine without CUDA NVIDIA's ops fall back to
their reference implementations (``torch_utils/ops``: ``_upfirdn2d_ref``, ``_bias_act_ref``),
which is what its users get on a CPU.

What it runs is NVIDIA's code: ``training.networks.Generator`` / ``Discriminator``,
``training.loss.StyleGAN2Loss`` and the phase schedule of ``training.training_loop`` (lazy
regularization: Gmain and Dmain every minibatch, Greg every ``G_reg_interval``, Dreg every
``D_reg_interval``, each phase with its own Adam step at the interval-adjusted learning rate and
betas, then the G_ema update), reproduced here without the loop's files, ticks and data loader:
the real images are a uint8 tensor held in memory, converted per minibatch as the loop does.

The protocol, shared with our own worker (``python -m runners.benchmark --worker=...``): the
worker sets its case up, runs the warm-up and prints ``BENCH {"event": "ready", ...}``; then each
``round`` line on stdin runs one timed unit and prints ``BENCH {"event": "round", "seconds": ...}``;
``quit`` prints ``BENCH {"event": "done", "peak_rss_mib": ...}`` (the process's peak resident set
over its whole life) and exits. Any other output is not for the parent.
"""

from __future__ import annotations

import copy
import json
import os
import resource
import sys
import time
import types
from typing import Callable, Dict, Optional

PREFIX = "BENCH "


def emit(event: str, **fields) -> None:
    """One protocol message on stdout."""
    sys.stdout.write(PREFIX + json.dumps({"event": event, **fields}) + "\n")
    sys.stdout.flush()


def peak_rss_mib() -> float:
    """This process's peak resident set size so far (Linux reports ``ru_maxrss`` in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def serve(unit: Callable[[], None], ready: Dict, profile: Optional[Callable[[], Dict]] = None) -> None:
    """Answers the parent's commands: ``round`` times ``unit()`` once (a unit that returns a dict
    reports its own ``seconds`` and ``parts``: a cycle composed of timed phases); ``profile``
    returns where the time of a unit goes (``profile()``), ``quit`` ends with the peak RSS. The
    peak is taken before the first profile: profilers hold buffers of their own."""
    emit("ready", **ready)
    peak = None
    for line in sys.stdin:
        command = line.strip()
        if command == "round":
            start = time.perf_counter()
            result = unit()
            seconds = time.perf_counter() - start
            emit("round", **(result if isinstance(result, dict) else {"seconds": seconds}))
        elif command == "profile" and profile is not None:
            peak = peak or peak_rss_mib()
            emit("profile", **profile())
        elif command == "quit":
            break
        elif command:
            emit("error", message=f"unknown command {command!r}")
    emit("done", peak_rss_mib=peak or peak_rss_mib())


# ---- the peer: stylegan2-ada-pytorch ----------------------------------------------------------


def _import_peer(path: str):
    """NVIDIA's modules from the checkout at ``path``; its own directory first on sys.path, and
    this file's directory off it (this project has a ``metrics`` package too)."""
    if not os.path.isfile(os.path.join(path, "training", "networks.py")):
        raise SystemExit(f"{path} is not a stylegan2-ada-pytorch checkout (no training/networks.py)")
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [path] + [p for p in sys.path if os.path.abspath(p or ".") != here]
    # dnnlib.util imports requests for its URL downloads, which the benchmark never makes.
    try:
        import requests  # noqa: F401
    except ImportError:
        sys.modules["requests"] = types.ModuleType("requests")
    import warnings

    import torch

    with warnings.catch_warnings():
        # No CUDA: NVIDIA's ops warn once that they fall back to their reference implementation.
        warnings.simplefilter("ignore")
        from torch_utils.ops import bias_act, upfirdn2d

        bias_act._init()
        upfirdn2d._init()
    from training import loss, networks

    return torch, networks, loss


def _networks(spec: Dict, torch, networks):
    """G and D as stylegan2-ada-pytorch's train.py builds them, with the spec's widths; float32
    (``--fp32``: no fp16 resolutions, no conv clamp) unless the spec says otherwise."""
    res, latent = spec["resolution"], spec["latent_dim"]
    common = dict(c_dim=0, img_resolution=res, img_channels=3)
    synthesis = dict(channel_base=spec["channel_base"], channel_max=spec["channel_max"],
                     num_fp16_res=spec.get("num_fp16_res", 0), conv_clamp=spec.get("conv_clamp"))
    G = networks.Generator(z_dim=latent, w_dim=latent, mapping_kwargs=dict(num_layers=spec["mapping_layers"]),
                           synthesis_kwargs=synthesis, **common)
    D = networks.Discriminator(architecture="resnet", **synthesis, epilogue_kwargs=dict(
        mbstd_group_size=min(spec["batch"], 4)), **common)
    return G, D


def peer_generator(spec: Dict) -> Callable[[], None]:
    """G forward of ``batch`` images as generate.py runs it (eval mode, constant noise, no gradients)."""
    torch, networks, _ = _import_peer(spec["peer"])
    torch.manual_seed(0)
    G, _ = _networks(spec, torch, networks)
    G = G.eval().requires_grad_(False)
    z = torch.randn([spec["batch"], G.z_dim])
    c = torch.zeros([spec["batch"], 0])

    def unit() -> None:
        with torch.no_grad():
            G(z, c, noise_mode="const", fused_modconv=False)  # ours: fused_modconv=False too

    return unit


def composed_cycle(index: Callable[[], int], minibatch: Callable[[], None], phase: Callable[[str], None], cycle: int,
                   intervals: Dict[str, int]) -> Dict:
    """A lazy-regularization cycle's time composed from its parts, each timed once: a minibatch
    that runs no regularization (Gmain, Dmain, G_ema, data), and each regularization phase alone;
    ``cycle`` plain minibatches plus every phase ``cycle / interval`` times. The same arithmetic
    for both sides, so that a long cycle need not be run whole on a slow machine."""
    while any(index() % interval == 0 for interval in intervals.values()):
        minibatch()  # not timed: the next timed minibatch must be a plain one
    parts = {}
    start = time.perf_counter()
    minibatch()
    parts["minibatch (Gmain, Dmain, G_ema, data)"] = time.perf_counter() - start
    for name in intervals:
        start = time.perf_counter()
        phase(name)
        parts[name] = time.perf_counter() - start
    seconds = cycle * parts["minibatch (Gmain, Dmain, G_ema, data)"] + sum(
        cycle // interval * parts[name] for name, interval in intervals.items())
    return {"seconds": seconds, "parts": parts}


def peer_training(spec: Dict):
    """NVIDIA's training schedule: ``minibatch()`` runs the phases due at its index, then G_ema;
    ``phase(name)`` one phase alone (its gradients and Adam step); ``state`` holds the index."""
    torch, networks, loss_module = _import_peer(spec["peer"])
    torch.manual_seed(0)
    batch, res = spec["batch"], spec["resolution"]
    G, D = _networks(spec, torch, networks)
    G, D = G.train().requires_grad_(False), D.train().requires_grad_(False)
    G_ema = copy.deepcopy(G).eval()
    device = torch.device("cpu")
    loss = loss_module.StyleGAN2Loss(device, G.mapping, G.synthesis, D, style_mixing_prob=spec["style_mixing_prob"],
                                     r1_gamma=spec["r1_gamma"], pl_batch_shrink=spec["pl_batch_shrink"],
                                     pl_decay=0.01, pl_weight=spec["pl_weight"])
    phases = []  # training_loop's lazy regularization: (name, module, optimizer, interval)
    for name, module, interval in (("G", G, spec["g_reg_interval"]), ("D", D, spec["d_reg_interval"])):
        ratio = interval / (interval + 1)
        opt = torch.optim.Adam(module.parameters(), lr=spec["lr"] * ratio, betas=[b ** ratio for b in (0, 0.99)],
                               eps=1e-8)
        phases += [(name + "main", module, opt, 1), (name + "reg", module, opt, interval)]
    images = torch.randint(0, 256, [max(batch, 64), 3, res, res], dtype=torch.uint8)
    ema_beta = 0.5 ** (batch / (spec["ema_kimg"] * 1000))
    state = {"batch_idx": 0}

    def inputs():
        start = (state["batch_idx"] * batch) % (len(images) - batch + 1)
        real_img = images[start:start + batch].to(torch.float32) / 127.5 - 1
        return real_img, torch.zeros([batch, 0]), torch.randn([len(phases) * batch, G.z_dim]).split(batch)

    def run(name, module, opt, interval, real_img, real_c, gen_z) -> None:
        gen_c = torch.zeros([batch, 0])
        opt.zero_grad(set_to_none=True)
        module.requires_grad_(True)
        loss.accumulate_gradients(phase=name, real_img=real_img, real_c=real_c, gen_z=gen_z, gen_c=gen_c,
                                  sync=True, gain=interval)
        module.requires_grad_(False)
        for param in module.parameters():
            if param.grad is not None:
                torch.nan_to_num(param.grad, nan=0, posinf=1e5, neginf=-1e5, out=param.grad)
        opt.step()

    def phase(wanted: str) -> None:
        real_img, real_c, all_gen_z = inputs()
        for p, gen_z in zip(phases, all_gen_z):
            if p[0] == wanted:
                run(*p, real_img, real_c, gen_z)

    def minibatch() -> None:
        k = state["batch_idx"]
        real_img, real_c, all_gen_z = inputs()
        for p, gen_z in zip(phases, all_gen_z):
            if k % p[3] == 0:
                run(*p, real_img, real_c, gen_z)
        with torch.no_grad():
            for p_ema, p in zip(G_ema.parameters(), G.parameters()):
                p_ema.copy_(p.lerp(p_ema, ema_beta))
            for b_ema, b in zip(G_ema.buffers(), G.buffers()):
                b_ema.copy_(b)
        state["batch_idx"] += 1

    intervals = {name: interval for name, _, _, interval in phases if interval > 1}
    return minibatch, phase, state, intervals


# The record_function scopes of NVIDIA's loss (training/loss.py) and optimizer steps.
_PEER_SCOPES = ("Gmain_forward", "Gmain_backward", "Gpl_forward", "Gpl_backward", "Dgen_forward", "Dgen_backward",
                "Dreal_forward", "Dreal_backward", "Dr1_forward", "Dr1_backward", "Optimizer.step#Adam.step")


def torch_profile(unit: Callable[[], None], top: int = 15) -> Dict:
    """One ``unit()`` under PyTorch's profiler: seconds per scope of NVIDIA's loss (inclusive, summed
    over calls) and the ``top`` ops by their own time."""
    import torch

    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        unit()
    events = prof.key_averages()
    scopes = {e.key: e.cpu_time_total * 1e-6 for e in events if e.key in _PEER_SCOPES}
    ops = sorted(((e.key, e.self_cpu_time_total * 1e-6) for e in events if e.key not in _PEER_SCOPES),
                 key=lambda kv: -kv[1])[:top]
    return {"scopes": scopes, "ops": dict(ops)}


def warm_up(step: Callable[[], None], count: int) -> Dict[str, float]:
    """Runs ``step`` ``count`` times: the time of the first call (tracing, for ours) and of all."""
    start = time.perf_counter()
    step()
    first = time.perf_counter() - start
    for _ in range(count - 1):
        step()
    return {"first_s": first, "warmup_s": time.perf_counter() - start}


# PyTorch's OpenMP threads spin while they wait for each other. On a CPU that other processes
# share, a spinning thread holds a core the thread it waits for needs: measured here (2 cores,
# load average 10), NVIDIA's training minibatch at 16 px ran 7-10x slower than with passive
# waits, tiny matmuls taking 50 ms. Passive waiting costs little on an idle machine, so the peer
# always runs with it (an explicit setting in the environment wins).
OMP_ENV = {"OMP_WAIT_POLICY": "PASSIVE"}


def main(argv) -> None:
    for key, value in OMP_ENV.items():
        os.environ.setdefault(key, value)  # before torch loads its OpenMP runtime
    spec = json.loads(argv[1])
    start = time.perf_counter()
    if spec["work"] == "generator":
        unit = peer_generator(spec)
        step, count, images = unit, spec["warmup"], spec["batch"]
    elif spec["work"] == "training":
        step, phase, state, intervals = peer_training(spec)
        if spec.get("unit") == "phases":
            unit = lambda: composed_cycle(lambda: state["batch_idx"], step, phase, spec["cycle"], intervals)  # noqa: E731
        else:
            unit = lambda: [step() for _ in range(spec["cycle"])]  # noqa: E731
        count = spec.get("warmup") or spec["cycle"] + 1
        images = spec["cycle"] * spec["batch"]
    else:
        raise SystemExit(f"unknown work {spec['work']!r}")
    setup = time.perf_counter() - start
    ready = {"setup_s": setup, "images_per_unit": images, **warm_up(step, count)}
    serve(unit, ready, lambda: torch_profile(unit))


if __name__ == "__main__":
    main(sys.argv)
