"""Repository rule exposing a local CUDA toolkit to Bazel (offline: nothing is downloaded).

It looks where custom_ops/build.py looks: $CUDA_HOME, $CUDA_PATH, the nvcc on the PATH, then
/usr/local/cuda (a toolkit has bin/nvcc and include/cuda_runtime_api.h), and asks build.py for the
CUDA targets and nvcc's flags, so both builds compile alike. Without a toolkit the repository still
exists, so that the CPU build works; building with --config=cuda then fails with that reason.
"""

def _python(repository_ctx):
    explicit = repository_ctx.os.environ.get("PYTHON_BIN_PATH")
    if explicit:
        return explicit
    venv = repository_ctx.path(Label("//:WORKSPACE")).dirname.get_child(".venv").get_child("bin").get_child("python")
    return str(venv) if venv.exists else "python3"

def _is_toolkit(repository_ctx, root):
    return root and repository_ctx.path(root + "/bin/nvcc").exists and repository_ctx.path(root + "/include/cuda_runtime_api.h").exists

def _find_toolkit(repository_ctx):
    env = repository_ctx.os.environ
    candidates = [env.get("CUDA_HOME", ""), env.get("CUDA_PATH", "")]
    nvcc = repository_ctx.which("nvcc")
    if nvcc:
        candidates.append(str(nvcc.realpath.dirname.dirname))
    candidates.append("/usr/local/cuda")
    for root in candidates:
        if _is_toolkit(repository_ctx, root):
            return str(repository_ctx.path(root).realpath)
    return None

_MISSING = """
package(default_visibility = ["//visibility:public"])

genrule(
    name = "missing",
    outs = ["missing.h"],
    cmd = "echo 'no CUDA toolkit found (nvcc): install one or set CUDA_HOME, see README.md Install' >&2; exit 1",
)

cc_library(name = "cuda_headers", hdrs = [":missing"])

cc_library(name = "cudart_static", hdrs = [":missing"])
"""

def _cuda_configure_impl(repository_ctx):
    root = _find_toolkit(repository_ctx)
    if not root:
        repository_ctx.file("BUILD", _MISSING)
        repository_ctx.file("defs.bzl", "NVCC = ''\nCUDA_ARCHS = ''\nNVCC_FLAGS = []\n")
        return
    build_py = repository_ctx.path(Label("//custom_ops:build.py"))
    result = repository_ctx.execute([_python(repository_ctx), str(build_py), "--nvcc-flags"])
    if result.return_code != 0:
        fail("custom_ops/build.py --nvcc-flags failed: %s" % result.stderr)
    lines = result.stdout.strip().splitlines()
    repository_ctx.symlink(root + "/include", "include")
    lib = None
    for candidate in ["lib64", "lib", "targets/x86_64-linux/lib"]:
        if repository_ctx.path(root + "/" + candidate + "/libcudart_static.a").exists:
            lib = root + "/" + candidate + "/libcudart_static.a"
            break
    if not lib:
        fail("no libcudart_static.a under %s: the Bazel build links the CUDA runtime statically" % root)
    repository_ctx.symlink(lib, "lib/libcudart_static.a")
    repository_ctx.file("defs.bzl", "NVCC = %r\nCUDA_ARCHS = %r\nNVCC_FLAGS = %r\n" % (root + "/bin/nvcc", lines[0], lines[1:]))
    repository_ctx.file("BUILD", """
package(default_visibility = ["//visibility:public"])

# CUDA's headers for the TF GPU kernels (-isystem: their warnings are not ours).
cc_library(
    name = "cuda_headers",
    hdrs = glob(["include/**/*.h", "include/**/*.hpp"]),
    includes = ["include"],
)

# The static runtime, its symbols kept private so that TensorFlow's own libcudart cannot interpose.
cc_library(
    name = "cudart_static",
    srcs = ["lib/libcudart_static.a"],
    linkopts = ["-ldl", "-lrt", "-lpthread", "-Wl,--exclude-libs,ALL"],
)
""")

cuda_configure = repository_rule(
    implementation = _cuda_configure_impl,
    environ = ["CUDA_HOME", "CUDA_PATH", "PATH", "PYTHON_BIN_PATH"],
    local = True,
)
