"""What every runner shares: running main under absl with one-line errors for bad input.

Every failure a user can cause ends in one line, ``<program>: error: <message>``, and a non-zero
exit: flags that do not parse (a missing, unreadable or binary ``--flagfile`` included), float flags
that are NaN or infinite, bad input (``UserError``, ``ValueError``), file system errors (``OSError``:
the path and why), and SIGINT / SIGTERM (which finish or abandon the write in progress first).
"""

from __future__ import annotations

import locale
import math
import os
import stat
import sys
from typing import Callable, List, NoReturn, Optional, Sequence

from absl import app, flags

from tf_stylegan2.fileio import Interrupted, UserError, os_error_message, stop_on_signals

USAGE_ERROR = 2  # the exit status of every user error (as argparse's)
MAX_FLAGFILE_BYTES = 1 << 20


def fail(message: str, status: int = USAGE_ERROR, program: Optional[str] = None) -> NoReturn:
    """Prints ``<program>: error: <message>`` on one line and exits with ``status``."""
    program = os.path.basename(program or sys.argv[0])
    print(f"{program}: error: {' '.join(message.split())}", file=sys.stderr)
    sys.exit(status)


def _flagfile_arguments(args: Sequence[str]) -> List[str]:
    """The files named by ``--flagfile=X`` / ``--flagfile X`` (one dash too), as absl reads them."""
    files = []
    for i, arg in enumerate(args):
        if arg in ("--flagfile", "-flagfile") and i + 1 < len(args):
            files.append(args[i + 1])
        elif arg.startswith(("--flagfile=", "-flagfile=")):
            files.append(arg.split("=", 1)[1])
    return [os.path.expanduser(f.strip()) for f in files if f.strip()]


def check_flagfiles(args: Sequence[str], parents: Sequence[str] = ()) -> None:
    """UserError unless every flagfile in ``args`` (and those they include) is a readable text
    file: absl would fail on it with a traceback (UnicodeDecodeError). Pipes and devices are left
    to absl, since reading them here would consume them."""
    encoding = locale.getpreferredencoding(False)  # what absl's open() decodes with
    for path in _flagfile_arguments(args):
        if path in parents:
            continue  # absl warns about the cycle and skips it
        try:
            if not stat.S_ISREG(os.stat(path).st_mode):
                continue
            with open(path, "rb") as f:
                data = f.read(MAX_FLAGFILE_BYTES + 1)
        except OSError as e:
            raise UserError(f"cannot read --flagfile={path}: {e.strerror or e}") from None
        if len(data) > MAX_FLAGFILE_BYTES:
            raise UserError(f"--flagfile={path} is larger than {MAX_FLAGFILE_BYTES >> 20} MiB: not a file of flags")
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError as e:
            raise UserError(f"--flagfile={path} is not a text file of flags (byte {e.start} is not {encoding})") from None
        check_flagfiles([line.strip() for line in text.splitlines()], [*parents, path])


def check_float_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """UserError for a float flag that is NaN or infinite (absl's float parser accepts 'nan' and 'inf')."""
    for name in flag_values:
        flag = flag_values[name]
        if isinstance(flag.parser, flags.FloatParser) and flag.value is not None and not math.isfinite(flag.value):
            raise UserError(f"--{name} must be a finite number, got {flag.value}")


def parse_flags(argv: List[str], flag_values: flags.FlagValues = flags.FLAGS) -> List[str]:
    """absl's flag parsing, with one-line errors (absl's own parser prints two lines, exits 1, and
    raises UnicodeDecodeError for a binary flagfile)."""
    try:
        check_flagfiles(argv[1:])
        remaining = flag_values(argv)
        check_float_flags(flag_values)
    except (flags.Error, UserError) as e:
        fail(str(e), program=argv[0])
    except UnicodeDecodeError as e:
        fail(f"a --flagfile is not a text file of flags ({e})", program=argv[0])
    return remaining


def run(main: Callable[[], None]) -> None:
    """Runs ``main()`` as an absl program.

    Bad input (``UserError``, ``ValueError`` from a config or shape check, an ``OSError`` such as a
    missing file or an unwritable directory) prints ``<program>: error: <message>`` on one line and
    exits with status 2; SIGINT and SIGTERM print one line and exit with 128 + the signal's number.
    Set ``TF_STYLEGAN2_DEBUG=1`` to get the traceback instead.
    """

    def wrapped(argv):
        if len(argv) > 1:
            fail(f"unexpected positional arguments: {' '.join(argv[1:])}")
        debug = bool(os.environ.get("TF_STYLEGAN2_DEBUG"))
        try:
            with stop_on_signals():
                main()
        except Interrupted as e:
            if debug:
                raise
            fail(str(e), 128 + e.signum)
        except (UserError, ValueError) as e:
            if debug:
                raise
            fail(str(e))
        except OSError as e:
            if debug:
                raise
            fail(os_error_message(e))

    app.run(wrapped, flags_parser=parse_flags)
