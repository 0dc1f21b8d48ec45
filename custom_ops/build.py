"""Builds the compiled kernels with nvcc and the system C++ compiler, without Bazel.

  python -m custom_ops.build              # CPU kernels          -> custom_ops/_stylegan2_ops.so
  python -m custom_ops.build --cuda       # CPU and GPU kernels  -> custom_ops/_stylegan2_ops.so
  python -m custom_ops.build --portable   # no -march=native, for copying to other machines

The Bazel build (``bazel build //:ops [--config=cuda]``, see BUILD, WORKSPACE, .bazelrc) compiles the
same sources with the same flags. ``--cuda`` compiles the TensorFlow-free launch code
(kernels/cuda/*.cu) with nvcc for sm_80 and sm_90 plus PTX (newer GPUs compile the PTX at load),
links the CUDA runtime statically (the library then needs no libcudart of its own, only a driver
at least as new as the toolkit), and compiles the TF kernels with ``-DGOOGLE_CUDA=1``. Compile
warnings are errors in our code. The toolkit is found through ``$CUDA_HOME``, ``$CUDA_PATH``,
``nvcc`` on the PATH, or /usr/local/cuda.

The library reports the TensorFlow version, a digest of the kernel sources and its CUDA build; the
loader refuses one built for another TensorFlow or from other sources and uses the reference ops.
Nothing here imports TensorFlow until a TF op library is built, so the CUDA self-test can use it.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import glob
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from typing import List, Optional, Sequence, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
KERNELS = os.path.join(HERE, "kernels")
LIBRARY = os.path.join(HERE, "_stylegan2_ops.so")

TF_SOURCES = sorted(glob.glob(os.path.join(KERNELS, "*.cc")))  # *_gpu.cc are empty without GOOGLE_CUDA
CUDA_SOURCES = sorted(glob.glob(os.path.join(KERNELS, "cuda", "*.cu")))
HOST_EMULATION = os.path.join(KERNELS, "cuda", "host_emulation.cc")

# SASS for Ampere (sm_80; sm_86/sm_89 run it too) and Hopper (sm_90), and PTX of the newest, which
# the driver compiles for later GPUs.
CUDA_ARCHS = ("80", "90")
# Warnings are errors in our code; TF's and CUDA's headers are system headers (-isystem).
WARNINGS = ["-Wall", "-Wextra", "-Werror"]


def library_sources(root: str = KERNELS) -> List[str]:
    """The files a library is built from, relative to ``root`` (what ``sources_digest`` covers)."""
    patterns = ["*.cc", "*.h", os.path.join("cuda", "*.h"), os.path.join("cuda", "*.cu")]
    return sorted(os.path.relpath(p, root) for pattern in patterns for p in glob.glob(os.path.join(root, pattern)))


def sources_digest(root: str = KERNELS) -> str:
    """A short digest of the kernel sources; the library carries the one it was built from."""
    h = hashlib.sha256()
    for rel in library_sources(root):
        with open(os.path.join(root, rel), "rb") as f:
            h.update(rel.replace(os.sep, "/").encode() + b"\0" + f.read() + b"\0")
    return h.hexdigest()[:16]


def write_sources_header(path: str, root: str = KERNELS) -> str:
    """custom_ops/stylegan2_sources.h: the digest the library reports (kernels/ops_info.cc)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        f.write(f'#define STYLEGAN2_SOURCES "{sources_digest(root)}"\n')
    return path


def find_cuda() -> str:
    """The CUDA toolkit's root directory (holding bin/nvcc); raises RuntimeError if there is none."""
    candidates = [os.environ.get("CUDA_HOME", ""), os.environ.get("CUDA_PATH", "")]
    nvcc = shutil.which("nvcc")
    if nvcc:
        candidates.append(os.path.dirname(os.path.dirname(os.path.realpath(nvcc))))
    candidates.append("/usr/local/cuda")
    for root in candidates:  # a toolkit has the compiler and the runtime's headers
        if root and os.path.isfile(os.path.join(root, "bin", "nvcc")) and os.path.isfile(
                os.path.join(root, "include", "cuda_runtime_api.h")):
            return root
    raise RuntimeError("no CUDA toolkit found (nvcc): install one or set CUDA_HOME; see README.md, Install")


def gencode_flags(archs: Sequence[str] = CUDA_ARCHS) -> List[str]:
    flags = [f"-gencode=arch=compute_{a},code=sm_{a}" for a in archs]
    return flags + [f"-gencode=arch=compute_{archs[-1]},code=compute_{archs[-1]}"]


def archs_label(archs: Sequence[str] = CUDA_ARCHS) -> str:
    return ",".join([f"sm_{a}" for a in archs] + [f"compute_{archs[-1]}"])


def nvcc_flags(archs: Sequence[str] = CUDA_ARCHS) -> List[str]:
    return ["-std=c++17", "-O3", *gencode_flags(archs), "-Werror", "all-warnings", "-Xcompiler",
            "-fPIC," + ",".join(WARNINGS)]


def nvcc_command(cuda: str, source: str, output: str, archs: Sequence[str] = CUDA_ARCHS) -> List[str]:
    """Compiles one .cu file of the TensorFlow-free launch code into a position-independent object."""
    return [os.path.join(cuda, "bin", "nvcc"), *nvcc_flags(archs), "-c", source, "-o", output]


def cudart_flags(cuda: str) -> List[str]:
    """Link flags for the CUDA runtime: static when the toolkit has it (its symbols kept private, so
    that TensorFlow's own libcudart in the same process cannot interpose), else the shared one."""
    for lib in ("lib64", "lib", os.path.join("targets", "x86_64-linux", "lib")):
        directory = os.path.join(cuda, lib)
        if os.path.isfile(os.path.join(directory, "libcudart_static.a")):
            return [f"-L{directory}", "-l:libcudart_static.a", "-ldl", "-lrt", "-lpthread", "-Wl,--exclude-libs,ALL"]
        if glob.glob(os.path.join(directory, "libcudart.so*")):
            return [f"-L{directory}", "-lcudart", f"-Wl,-rpath,{directory}"]
    raise RuntimeError(f"no CUDA runtime library (libcudart) under {cuda}")


def _tf_flags() -> Tuple[List[str], List[str]]:
    """TensorFlow's compile flags (its headers as system headers) and link flags."""
    import tensorflow as tf

    compile_flags = [f"-isystem{f[2:]}" if f.startswith("-I") else f for f in tf.sysconfig.get_compile_flags()]
    return [f'-DSTYLEGAN2_TF_VERSION="{tf.__version__}"', *compile_flags], tf.sysconfig.get_link_flags()


def compile_commands(output: str, directory: str, portable: bool = False, compiler: str = "g++",
                     cuda: Optional[str] = None, cuda_objects: Sequence[str] = ()) -> Tuple[List[List[str]], List[str]]:
    """The C++ commands of the op library: one compile per source (objects in ``directory``), then
    the link (with ``cuda``: the GPU kernels and the CUDA runtime too)."""
    tf_compile, tf_link = _tf_flags()
    write_sources_header(os.path.join(directory, "custom_ops", "stylegan2_sources.h"))
    flags = ["-fPIC", "-O3", *WARNINGS, *([] if portable else ["-march=native"]), f"-I{KERNELS}", f"-I{directory}",
             *tf_compile]
    if cuda:
        flags += ["-DGOOGLE_CUDA=1", f'-DSTYLEGAN2_CUDA_ARCHS="{archs_label()}"',
                  f"-isystem{os.path.join(cuda, 'include')}"]
    objects = [os.path.join(directory, os.path.basename(s) + ".o") for s in TF_SOURCES]
    compiles = [[compiler, "-c", s, "-o", o, *flags] for s, o in zip(TF_SOURCES, objects)]
    link = [compiler, "-shared", *objects, *cuda_objects, "-o", output, *(cudart_flags(cuda) if cuda else []), *tf_link]
    return compiles, link


def _run(command: List[str]) -> None:
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{os.path.basename(command[0])} failed:\n{result.stdout}{result.stderr}")


def _run_all(commands: List[List[str]]) -> None:
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(os.cpu_count() or 1, 1)) as pool:
        list(pool.map(_run, commands))


def compile_cuda_objects(cuda: str, directory: str, archs: Sequence[str] = CUDA_ARCHS) -> List[str]:
    """nvcc on every .cu file (in parallel); returns the object files."""
    objects = [os.path.join(directory, os.path.basename(s) + ".o") for s in CUDA_SOURCES]
    _run_all([nvcc_command(cuda, s, o, archs) for s, o in zip(CUDA_SOURCES, objects)])
    return objects


def _atomic_build(output: str, make) -> str:
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    tmp = f"{output}.tmp{os.getpid()}"
    try:
        make(tmp)
        os.replace(tmp, output)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return output


def build(output: str = LIBRARY, portable: bool = False, compiler: str = "g++", cuda: bool = False,
          cuda_objects: Optional[Sequence[str]] = None) -> str:
    """Compiles the op library into ``output`` (written atomically) and returns the path; with
    ``cuda``, from ``cuda_objects`` when given (``compile_cuda_objects``), else compiled here."""
    if shutil.which(compiler) is None:
        raise RuntimeError(f"C++ compiler {compiler!r} not found")
    cuda_root = find_cuda() if cuda else None

    def make(tmp: str) -> None:
        with tempfile.TemporaryDirectory() as directory:
            objects = cuda_objects or (compile_cuda_objects(cuda_root, directory) if cuda_root else [])
            compiles, link = compile_commands(tmp, directory, portable, compiler, cuda_root, objects)
            _run_all(compiles)
            _run(link)

    return _atomic_build(output, make)


def build_cuda_api(output: str, cuda_objects: Optional[Sequence[str]] = None) -> str:
    """The TensorFlow-free launch code alone as a shared library with the C API (kernels/cuda/api.h),
    linked against the toolkit's shared CUDA runtime so that ctypes callers share it (cuda_selftest)."""
    cuda = find_cuda()
    rpath = os.path.join(cuda, "lib64")

    def make(tmp: str) -> None:
        with tempfile.TemporaryDirectory() as directory:
            objects = cuda_objects or compile_cuda_objects(cuda, directory)
            _run([os.path.join(cuda, "bin", "nvcc"), "-shared", "-cudart", "shared", f"-Xlinker=-rpath={rpath}",
                  *objects, "-o", tmp])

    return _atomic_build(output, make)


def build_host_emulation(output: str, compiler: str = "g++") -> str:
    """The CUDA kernels' per-thread code compiled for the host (kernels/cuda/host_emulation.cc)."""
    if shutil.which(compiler) is None:
        raise RuntimeError(f"C++ compiler {compiler!r} not found")
    return _atomic_build(output, lambda tmp: _run(
        [compiler, "-shared", "-fPIC", "-O2", "-std=c++17", *WARNINGS, HOST_EMULATION, "-o", tmp]))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default=LIBRARY)
    parser.add_argument("--cuda", action="store_true", help="also build the GPU kernels (needs nvcc)")
    parser.add_argument("--portable", action="store_true")
    parser.add_argument("--compiler", default="g++")
    # For the Bazel build, which takes these facts from here (see custom_ops/BUILD):
    parser.add_argument("--sources-header", metavar="PATH", help="write the sources digest header and exit")
    parser.add_argument("--nvcc-flags", action="store_true", help="print the CUDA targets, then nvcc's flags, and exit")
    args = parser.parse_args(argv)
    if args.sources_header:
        write_sources_header(args.sources_header)
        return 0
    if args.nvcc_flags:
        print("\n".join([archs_label(), *nvcc_flags()]))
        return 0
    try:
        path = build(args.output, args.portable, args.compiler, args.cuda)
    except RuntimeError as e:
        print(f"custom_ops.build: error: {e}", file=sys.stderr)
        return 1
    print(f"built {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
