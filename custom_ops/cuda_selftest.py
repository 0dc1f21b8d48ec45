"""Checks the CUDA kernels on a GPU without TensorFlow.

  python -m custom_ops.cuda_selftest           # on a GPU machine: build with nvcc, run, compare, time
  python -m custom_ops.cuda_selftest --host    # the same cases on the host emulation (no GPU, g++)

Compiles the TensorFlow-free launch code (kernels/cuda/*.cu) with nvcc into a shared library with
the C API (kernels/cuda/api.h), runs every kernel through ctypes on device buffers (the CUDA
runtime through ctypes), and compares the results with the project's numpy references
(tests/numpy_ref.py): upfirdn2d forward, its gradient (the adjoint rule of kernel_args, checked
against the transposed numpy Jacobian) and its second order (the adjoint of the adjoint), bias_act
forward and its grad modes 1 and 2, on random shapes with odd sizes, padding and cropping, flips,
up/down factors, clamp and every activation, in float32, float16, bfloat16 and float64. Prints a
table and exits 1 on any mismatch (2 when there is no GPU or toolkit). Where PyTorch imports and
sees the GPU, it also times the kernels against PyTorch implementations of the same ops.

Run from a checkout (it reads tests/numpy_ref.py); needs numpy and scipy, not TensorFlow.
"""

from __future__ import annotations

import argparse
import ctypes
import dataclasses
import os
import sys
import tempfile
import time
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np

from custom_ops import build, kernel_args
from custom_ops.kernel_args import ACT_CODES, DTYPES, BiasActStruct, Upfirdn2dArgs, Upfirdn2dStruct

sys.path.insert(0, os.path.join(os.path.dirname(build.HERE), "tests"))
import numpy_ref  # noqa: E402  (the project's numpy references, beside the tests)

# Tolerance per element type, relative to the magnitude of the reference (inputs are rounded to the
# type first, so this bounds the kernel's float arithmetic and the rounding of its output).
TOLERANCE = {"float64": 1e-9, "float32": 2e-5, "float16": 1e-2, "bfloat16": 6e-2}
# Second-order references use central differences of the numpy derivative (step 1e-4, float64).
FD_TOLERANCE = 1e-6


# ---- element types -----------------------------------------------------------------------------

def to_storage(a: np.ndarray, dtype: str) -> np.ndarray:
    """float64 values in the kernels' storage layout (bfloat16 as its 16 bits, rounded to nearest even)."""
    if dtype != "bfloat16":
        return np.ascontiguousarray(a, dtype=dtype)
    bits = np.ascontiguousarray(a, np.float32).view(np.uint32)
    return ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)


def from_storage(a: np.ndarray, dtype: str) -> np.ndarray:
    if dtype != "bfloat16":
        return a.astype(np.float64)
    return (a.astype(np.uint32) << 16).view(np.float32).astype(np.float64)


def rounded(a: np.ndarray, dtype: str) -> np.ndarray:
    """``a`` as the kernels see it in ``dtype``, back in float64."""
    return from_storage(to_storage(a, dtype), dtype)


# ---- backends: the device library, or the host emulation --------------------------------------

def _pointer(a: Optional[np.ndarray]):
    return None if a is None else a.ctypes.data_as(ctypes.c_void_p)


class HostBackend:
    """The kernels' per-thread code compiled for the host (kernels/cuda/host_emulation.cc)."""

    name = "host emulation"
    dtypes = ("float32", "float16", "float64")

    def __init__(self, library: str):
        self.lib = ctypes.CDLL(library)
        self.lib.sg2_host_upfirdn2d.argtypes = [ctypes.POINTER(Upfirdn2dStruct), ctypes.c_int] + [ctypes.c_void_p] * 3
        self.lib.sg2_host_bias_act.argtypes = [ctypes.POINTER(BiasActStruct), ctypes.c_int] + [ctypes.c_void_p] * 6

    def upfirdn2d(self, s: Upfirdn2dStruct, dtype: str, x: np.ndarray, f: np.ndarray, out_shape) -> np.ndarray:
        y = np.empty(out_shape, x.dtype)
        _check(self.lib.sg2_host_upfirdn2d(ctypes.byref(s), DTYPES[dtype], _pointer(x), _pointer(f), _pointer(y)))
        return y

    def bias_act(self, s: BiasActStruct, dtype: str, x, b, xref, yref, dy) -> np.ndarray:
        y = np.empty_like(x)
        _check(self.lib.sg2_host_bias_act(ctypes.byref(s), DTYPES[dtype], *map(_pointer, (x, b, xref, yref, dy, y))))
        return y


class DeviceBackend:
    """The nvcc-built C API on the GPU; buffers through the CUDA runtime (ctypes), default stream."""

    name = "GPU"
    dtypes = ("float32", "float16", "bfloat16", "float64")

    def __init__(self, library: str, cudart: str):
        # The runtime first, by path: the library's dependency on it (same soname) then resolves to it.
        self.rt = ctypes.CDLL(cudart, mode=ctypes.RTLD_GLOBAL)
        self.lib = ctypes.CDLL(library)
        self.lib.sg2_upfirdn2d.argtypes = [ctypes.POINTER(Upfirdn2dStruct), ctypes.c_int] + [ctypes.c_void_p] * 4
        self.lib.sg2_bias_act.argtypes = [ctypes.POINTER(BiasActStruct), ctypes.c_int] + [ctypes.c_void_p] * 7
        self.lib.sg2_error_string.restype = ctypes.c_char_p
        self.rt.cudaMalloc.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_size_t]
        self.rt.cudaMemcpy.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        self.rt.cudaFree.argtypes = [ctypes.c_void_p]
        message = ctypes.create_string_buffer(512)
        if self.lib.sg2_cuda_check_devices(message, len(message)) != 0:
            raise RuntimeError(message.value.decode())

    def _upload(self, a: Optional[np.ndarray]):
        if a is None:
            return None
        ptr = ctypes.c_void_p()
        self._rt_check(self.rt.cudaMalloc(ctypes.byref(ptr), max(a.nbytes, 1)))
        self._rt_check(self.rt.cudaMemcpy(ptr, _pointer(a), a.nbytes, 1))  # host to device
        self._buffers.append(ptr)
        return ptr

    def _run(self, call: Callable, inputs: Sequence[Optional[np.ndarray]], out: np.ndarray) -> np.ndarray:
        self._buffers: List[ctypes.c_void_p] = []
        try:
            pointers = [self._upload(a) for a in inputs]
            y = self._upload(out)
            _check(call(*pointers, y), self.lib)
            self._rt_check(self.rt.cudaDeviceSynchronize())  # errors of the kernel itself surface here
            self._rt_check(self.rt.cudaMemcpy(_pointer(out), y, out.nbytes, 2))  # device to host
            return out
        finally:
            for ptr in self._buffers:
                self.rt.cudaFree(ptr)

    def _rt_check(self, status: int) -> None:
        if status:
            raise RuntimeError(f"CUDA runtime error {status}: {self.lib.sg2_error_string(status).decode()}")

    def upfirdn2d(self, s: Upfirdn2dStruct, dtype: str, x: np.ndarray, f: np.ndarray, out_shape) -> np.ndarray:
        return self._run(lambda xp, fp, yp: self.lib.sg2_upfirdn2d(ctypes.byref(s), DTYPES[dtype], xp, fp, yp, None),
                         [x, f], np.empty(out_shape, x.dtype))

    def bias_act(self, s: BiasActStruct, dtype: str, x, b, xref, yref, dy) -> np.ndarray:
        return self._run(lambda *p: self.lib.sg2_bias_act(ctypes.byref(s), DTYPES[dtype], *p, None),
                         [x, b, xref, yref, dy], np.empty_like(x))


def _check(status: int, lib=None) -> None:
    if status:
        text = lib.sg2_error_string(status).decode() if lib is not None else kernel_args.STATUS.get(status, "?")
        raise RuntimeError(f"kernel returned {status}: {text}")


# ---- cases ---------------------------------------------------------------------------------------

@dataclasses.dataclass
class Result:
    kernel: str
    check: str
    dtype: str
    worst: float = 0.0  # largest error / tolerance over the cases
    cases: int = 0
    failures: List[str] = dataclasses.field(default_factory=list)

    def add(self, got: np.ndarray, want: np.ndarray, tol: float, label: str) -> None:
        scale = max(1.0, float(np.max(np.abs(want)))) if want.size else 1.0
        error = float(np.max(np.abs(got - want))) / scale if want.size else 0.0
        ratio = error / tol if np.isfinite(error) else np.inf
        self.cases += 1
        self.worst = max(self.worst, ratio)
        if not ratio <= 1:
            self.failures.append(f"{label}: error {error:.3g} > {tol:.3g}")


def upfirdn2d_cases(rs: np.random.RandomState, count: int) -> List[Tuple[Tuple[int, int], np.ndarray, Upfirdn2dArgs]]:
    """StyleGAN2's own calls, then random ones: odd sizes, 1..6-tap 2-D filters, up/down 1..3,
    padding -2..4 (negative crops), flips, gains. Each is (batch, channels), filter, arguments."""
    taps = np.outer([1, 3, 3, 1], [1, 3, 3, 1]) / 64.0
    cases = [
        ((2, 37), taps, Upfirdn2dArgs(8, 8, 4, 4, 2, 2, 1, 1, 2, 1, 2, 1, False, 4.0)),  # upsample2d
        ((2, 37), taps, Upfirdn2dArgs(8, 8, 4, 4, 1, 1, 2, 2, 1, 1, 1, 1, False, 1.0)),  # downsample2d
        ((1, 5), rs.randn(12, 12), Upfirdn2dArgs(9, 7, 12, 12, 1, 1, 1, 1, 6, 5, 6, 5, True, 1.0)),  # large filter
        ((1, 3), rs.randn(1, 8), Upfirdn2dArgs(5, 9, 1, 8, 2, 1, 1, 1, 4, 3, 0, 0, False, 2.0)),  # a separable pass
    ]
    while len(cases) < count:
        f = rs.randn(int(rs.randint(1, 7)), int(rs.randint(1, 7)))
        a = Upfirdn2dArgs(int(rs.randint(1, 12)), int(rs.randint(1, 12)), f.shape[0], f.shape[1],
                          *(int(v) for v in rs.randint(1, 4, 4)), *(int(v) for v in rs.randint(-2, 5, 4)),
                          bool(rs.rand() < 0.5), float(rs.uniform(0.5, 2)))
        cropped = min(a.in_h * a.upy + min(a.pady0, 0), a.in_w * a.upx + min(a.padx0, 0))
        if a.out_h >= 1 and a.out_w >= 1 and cropped > 0 and a.adjoint().out_h >= 1 and a.adjoint().out_w >= 1:
            cases.append(((int(rs.randint(1, 4)), int(rs.randint(1, 6))), f, a))
    return cases


def as_float32(v: float) -> float:
    """A scalar argument as the C API holds it (float fields)."""
    return float(np.float32(v))


def _reference(x: np.ndarray, f: np.ndarray, a: Upfirdn2dArgs) -> np.ndarray:
    return numpy_ref.upfirdn2d(x, f, (a.upx, a.upy), (a.downx, a.downy), (a.padx0, a.padx1, a.pady0, a.pady1),
                               a.flip, as_float32(a.gain))


def _jacobian_transpose(dy: np.ndarray, f: np.ndarray, a: Upfirdn2dArgs) -> np.ndarray:
    """J^T dy for every image and channel, J built column by column from the numpy forward."""
    basis = np.eye(a.in_h * a.in_w).reshape(1, a.in_h, a.in_w, a.in_h * a.in_w)
    jac = _reference(basis, f, a)[0].reshape(a.out_h * a.out_w, a.in_h, a.in_w)  # [out pixel, in_h, in_w]
    return np.einsum("pij,npc->nijc", jac, dy.reshape(dy.shape[0], -1, dy.shape[3]))


def check_upfirdn2d(backend, rs: np.random.RandomState, count: int) -> List[Result]:
    results = []
    cases = upfirdn2d_cases(rs, count)
    for dtype in backend.dtypes:
        fwd, grad, second = (Result("upfirdn2d", check, dtype) for check in ("forward", "gradient", "2nd order"))
        tol = TOLERANCE[dtype]
        for (n, c), f, a in cases:
            f32 = np.ascontiguousarray(f, np.float32)
            f64 = f32.astype(np.float64)
            x = rounded(rs.randn(n, a.in_h, a.in_w, c), dtype)
            run = lambda args, inp: from_storage(backend.upfirdn2d(  # noqa: E731
                args.struct(n, c), dtype, to_storage(inp, dtype), f32, (n, args.out_h, args.out_w, c)), dtype)
            fwd.add(run(a, x), _reference(x, f64, a), tol, f"{a}")
            dy = rounded(rs.randn(n, a.out_h, a.out_w, c), dtype)
            grad.add(run(a.adjoint(), dy), _jacobian_transpose(dy, f64, a), tol, f"{a}")
            second.add(run(a.adjoint().adjoint(), x), _reference(x, f64, a), tol, f"{a}")
        results += [fwd, grad, second]
    return results


def _second_derivative(act: str, t: np.ndarray, alpha: float) -> np.ndarray:
    d = numpy_ref.ACTIVATIONS[act][1]
    h = 1e-4
    return (d(t + h, alpha) - d(t - h, alpha)) / (2 * h)


def check_bias_act(backend, rs: np.random.RandomState, count: int) -> List[Result]:
    results = []
    shapes = [((2, 5, 7, 33), 3), ((3, 6, 4, 5), 1), ((1, 9, 3, 2), 3), ((17,), 0), ((4, 130), 1)]
    for dtype in backend.dtypes:
        tol = TOLERANCE[dtype]
        checks = {g: Result("bias_act", ["forward", "grad mode 1", "grad mode 2"][g], dtype) for g in range(3)}
        for i in range(count):
            for act in ACT_CODES:
                shape, axis = shapes[i % len(shapes)]
                func, dfunc, alpha, gain = numpy_ref.ACTIVATIONS[act]
                alpha, gain, clamp = as_float32(alpha), as_float32(gain), as_float32([-1.0, 0.7, 1.5][i % 3])
                bias = i % 4 != 3
                b = rounded(rs.randn(shape[axis]) * 0.5, dtype) if bias else None
                bshape = [-1 if k == axis else 1 for k in range(len(shape))]
                x = rs.randn(*shape) * 2
                tb = 0 if b is None else b.reshape(bshape)
                x = rounded(np.where(np.abs(x + tb) < 0.02, x + 0.05, x), dtype)  # away from kinks
                t = x + tb
                y = func(t, alpha) * gain
                y = y if clamp < 0 else np.clip(y, -clamp, clamp)
                yref = rounded(y, dtype)
                g, dy = rounded(rs.randn(*shape), dtype), rounded(rs.randn(*shape), dtype)
                mask = np.ones_like(y) if clamp < 0 else (np.abs(yref) < clamp).astype(np.float64)
                refs = [y, g * dfunc(t, alpha) * gain * mask, g * dy * _second_derivative(act, t, alpha) * gain * mask]
                label = f"{act} shape={shape} axis={axis} clamp={clamp} bias={bias}"
                for grad, ref in enumerate(refs):
                    s = kernel_args.bias_act_struct(shape, axis, 0 if b is None else len(b), act, grad, alpha, gain,
                                                    clamp)
                    inputs = [x, b, None, None, None] if grad == 0 else [g, b, x, yref, dy if grad == 2 else None]
                    got = backend.bias_act(s, dtype, *[None if a is None else to_storage(a, dtype) for a in inputs])
                    checks[grad].add(from_storage(got, dtype), ref, max(tol, FD_TOLERANCE if grad == 2 else 0),
                                     label)
        results += list(checks.values())
    return results


# ---- timing against PyTorch -----------------------------------------------------------------------

def time_against_torch(backend: DeviceBackend) -> List[Tuple[str, float, float]]:
    """(case, ours ms, PyTorch ms) on StyleGAN2-sized tensors, or [] without a usable PyTorch."""
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        return []
    if not torch.cuda.is_available():
        return []
    stream = torch.cuda.current_stream().cuda_stream
    taps = torch.tensor(np.outer([1, 3, 3, 1], [1, 3, 3, 1]) / 64.0, dtype=torch.float32, device="cuda")

    def ms(fn: Callable[[], object]) -> float:
        for _ in range(3):
            fn()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(20):
            fn()
        end.record()
        torch.cuda.synchronize()
        return start.elapsed_time(end) / 20

    def torch_upfirdn2d(x, a: Upfirdn2dArgs):  # NHWC in, NHWC out; channels_last convolution
        n, h, w, c = x.shape
        x = x.permute(0, 3, 1, 2)
        x = F.pad(x.reshape(n, c, h, 1, w, 1), [0, a.upx - 1, 0, 0, 0, a.upy - 1]).reshape(n, c, h * a.upy, w * a.upx)
        x = F.pad(x, [a.padx0, a.padx1, a.pady0, a.pady1])
        weight = (taps * a.gain).flip([0, 1])[None, None].repeat(c, 1, 1, 1).to(x.dtype)
        x = F.conv2d(x.contiguous(memory_format=torch.channels_last), weight, groups=c)
        return x[:, :, ::a.downy, ::a.downx].permute(0, 2, 3, 1)

    results = []
    for dtype, torch_dtype in (("float32", torch.float32), ("float16", torch.float16)):
        for label, a in (("upsample2d 8x64x64x512", Upfirdn2dArgs(64, 64, 4, 4, 2, 2, 1, 1, 2, 1, 2, 1, False, 4.0)),
                         ("downsample2d 8x128x128x256", Upfirdn2dArgs(128, 128, 4, 4, 1, 1, 2, 2, 1, 1, 1, 1))):
            c = 512 if a.upx > 1 else 256
            x = torch.randn(8, a.in_h, a.in_w, c, device="cuda", dtype=torch_dtype)
            y = torch.empty(8, a.out_h, a.out_w, c, device="cuda", dtype=torch_dtype)
            s = a.struct(8, c)
            ours = ms(lambda: backend.lib.sg2_upfirdn2d(ctypes.byref(s), DTYPES[dtype], x.data_ptr(), taps.data_ptr(),
                                                        y.data_ptr(), stream))
            results.append((f"{label} {dtype}", ours, ms(lambda: torch_upfirdn2d(x, a))))
        x = torch.randn(8, 64, 64, 512, device="cuda", dtype=torch_dtype)
        b = torch.randn(512, device="cuda", dtype=torch_dtype)
        y = torch.empty_like(x)
        s = kernel_args.bias_act_struct(tuple(x.shape), 3, 512, "lrelu", 0, 0.2, float(np.sqrt(2)), 256.0)
        ours = ms(lambda: backend.lib.sg2_bias_act(ctypes.byref(s), DTYPES[dtype], x.data_ptr(), b.data_ptr(), None,
                                                   None, None, y.data_ptr(), stream))
        theirs = ms(lambda: (F.leaky_relu(x + b, 0.2) * np.sqrt(2)).clamp(-256, 256))
        results.append((f"bias_act lrelu clamp 8x64x64x512 {dtype}", ours, theirs))
    return results


# ---- the program ----------------------------------------------------------------------------------

def run(backend, seed: int = 0, cases: int = 24) -> List[Result]:
    rs = np.random.RandomState(seed)
    return check_upfirdn2d(backend, rs, cases) + check_bias_act(backend, rs, max(cases // 4, 3))


def table(results: Sequence[Result]) -> str:
    lines = ["| kernel | check | dtype | cases | worst error / tolerance | result |", "|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r.kernel} | {r.check} | {r.dtype} | {r.cases} | {r.worst:.3f} | "
                     f"{'ok' if not r.failures else 'MISMATCH'} |")
    return "\n".join(lines)


def make_backend(host: bool, directory: str):
    if host:
        return HostBackend(build.build_host_emulation(os.path.join(directory, "sg2_host.so")))
    cuda = build.find_cuda()
    started = time.perf_counter()
    library = build.build_cuda_api(os.path.join(directory, "sg2_cuda.so"))
    print(f"nvcc build of the C API library: {time.perf_counter() - started:.1f} s")
    return DeviceBackend(library, os.path.join(cuda, "lib64", "libcudart.so"))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", action="store_true", help="run the host emulation instead of the GPU")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cases", type=int, default=24, help="random upfirdn2d cases per element type")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as directory:
        try:
            backend = make_backend(args.host, directory)
        except (RuntimeError, OSError) as e:
            print(f"cuda_selftest: cannot run the {'host emulation' if args.host else 'GPU kernels'}: {e}",
                  file=sys.stderr)
            return 2
        results = run(backend, args.seed, args.cases)
        print(f"{backend.name}: seed {args.seed}")
        print(table(results))
        for r in results:
            for failure in r.failures[:5]:
                print(f"MISMATCH {r.kernel} {r.check} {r.dtype}: {failure}")
        if isinstance(backend, DeviceBackend):
            timings = time_against_torch(backend)
            if timings:
                print("\n| case | kernel ms | PyTorch ms | speed-up |\n|---|---|---|---|")
                for label, ours, theirs in timings:
                    print(f"| {label} | {ours:.3f} | {theirs:.3f} | {theirs / ours:.2f}x |")
            else:
                print("\n(no timing: PyTorch with CUDA does not import here)")
    return 1 if any(r.failures for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
