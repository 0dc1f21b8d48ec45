"""Repository rule exposing the installed TensorFlow's headers and framework library to Bazel.

It asks the Python interpreter named by the PYTHON_BIN_PATH environment variable (default: the
project's .venv, else python3) for tf.sysconfig paths and the version, so the op library is always
compiled against the TensorFlow that will load it.
"""

def _python(repository_ctx):
    explicit = repository_ctx.os.environ.get("PYTHON_BIN_PATH")
    if explicit:
        return explicit
    venv = repository_ctx.path(Label("//:WORKSPACE")).dirname.get_child(".venv").get_child("bin").get_child("python")
    return str(venv) if venv.exists else "python3"

def _tf_configure_impl(repository_ctx):
    script = "import tensorflow as tf; print(tf.sysconfig.get_include()); print(tf.sysconfig.get_lib()); print(tf.__version__)"
    result = repository_ctx.execute([_python(repository_ctx), "-c", script], environment = {"TF_CPP_MIN_LOG_LEVEL": "3"})
    if result.return_code != 0:
        fail("cannot import tensorflow with %s: %s" % (_python(repository_ctx), result.stderr))
    include, lib, version = result.stdout.strip().splitlines()[-3:]
    repository_ctx.symlink(include, "include")
    repository_ctx.symlink(lib + "/libtensorflow_framework.so.2", "libtensorflow_framework.so.2")
    repository_ctx.file("BUILD", """
package(default_visibility = ["//visibility:public"])

cc_library(
    name = "tf_headers",
    hdrs = glob(["include/**/*"]),
    includes = ["include"],
    defines = [
        "_GLIBCXX_USE_CXX11_ABI=1",
        "EIGEN_MAX_ALIGN_BYTES=64",
        "STYLEGAN2_TF_VERSION=\\\\\\"{version}\\\\\\"",
    ],
)

cc_library(
    name = "tf_framework",
    srcs = ["libtensorflow_framework.so.2"],
)
""".format(version = version))

tf_configure = repository_rule(
    implementation = _tf_configure_impl,
    environ = ["PYTHON_BIN_PATH"],
    local = True,
)
