"""Command-line programs (absl). Each parses flags, builds a config and calls one library function."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _import_tensorflow_quietly() -> None:
    """Imports TensorFlow with stderr muted.

    TF 2.21 prints its oneDNN and CPU-feature notices from C++ static initialisers during import,
    whatever TF_CPP_MIN_LOG_LEVEL says; they would bury a runner's one-line error. stderr is
    restored before anything else runs, so a failing import still shows its traceback.
    """
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


if not os.environ.get("TF_STYLEGAN2_DEBUG"):
    _import_tensorflow_quietly()
