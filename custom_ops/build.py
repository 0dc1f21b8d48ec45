"""Builds the compiled CPU kernels with the system C++ compiler, without Bazel.

  python -m custom_ops.build              # -> custom_ops/_stylegan2_ops.so
  python -m custom_ops.build --portable   # no -march=native, for copying to other machines

The Bazel build (``bazel build //custom_ops:_stylegan2_ops.so``, see BUILD and WORKSPACE) compiles
the same sources. The library reports the TensorFlow version it was compiled against; the loader
refuses one built for another version (TF's C++ ABI is not stable) and uses the reference ops.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from typing import List

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCES = [os.path.join(HERE, "kernels", name) for name in ("bias_act_op.cc", "upfirdn2d_op.cc", "ops_info.cc")]
LIBRARY = os.path.join(HERE, "_stylegan2_ops.so")


def compile_command(output: str, portable: bool = False, compiler: str = "g++") -> List[str]:
    import tensorflow as tf

    arch = [] if portable else ["-march=native"]
    # TF headers use APIs they deprecate themselves; their warnings would drown real ones.
    return [compiler, "-shared", "-fPIC", "-O3", "-Wno-deprecated-declarations", "-Wno-interference-size", *arch,
            f'-DSTYLEGAN2_TF_VERSION="{tf.__version__}"', *SOURCES, "-o", output,
            *tf.sysconfig.get_compile_flags(), *tf.sysconfig.get_link_flags()]


def build(output: str = LIBRARY, portable: bool = False, compiler: str = "g++") -> str:
    """Compiles the kernels into ``output`` (written atomically) and returns the path."""
    if shutil.which(compiler) is None:
        raise RuntimeError(f"C++ compiler {compiler!r} not found")
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    tmp = f"{output}.tmp{os.getpid()}"
    try:
        subprocess.run(compile_command(tmp, portable, compiler), check=True)
        os.replace(tmp, output)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return output


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default=LIBRARY)
    parser.add_argument("--portable", action="store_true")
    parser.add_argument("--compiler", default="g++")
    args = parser.parse_args(argv)
    try:
        path = build(args.output, args.portable, args.compiler)
    except (RuntimeError, subprocess.CalledProcessError) as e:
        print(f"custom_ops.build: error: {e}", file=sys.stderr)
        return 1
    print(f"built {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
