"""What every runner shares: running main under absl with one-line errors for bad input."""

from __future__ import annotations

import os
import sys
from typing import Callable

from absl import app

from tf_stylegan2.fileio import UserError


def run(main: Callable[[], None]) -> None:
    """Runs ``main()`` as an absl program.

    Bad input (``UserError``, ``ValueError`` from a config or shape check, a missing file) prints
    ``<program>: error: <message>`` on one line and exits with status 2. Set
    ``TF_STYLEGAN2_DEBUG=1`` to get the traceback instead.
    """

    def wrapped(argv):
        if len(argv) > 1:
            raise app.UsageError(f"unexpected positional arguments: {' '.join(argv[1:])}")
        try:
            main()
        except (UserError, ValueError, FileNotFoundError) as e:
            if os.environ.get("TF_STYLEGAN2_DEBUG"):
                raise
            message = " ".join(str(e).split())
            print(f"{os.path.basename(sys.argv[0])}: error: {message}", file=sys.stderr)
            sys.exit(2)

    app.run(wrapped)
