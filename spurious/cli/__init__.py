"""The `spurious` command. Each command group lives in its own module of this package and
exposes `register(subparsers)`, which adds its parsers with `handler=` set."""
from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import threading

from ..core.errors import SpuriousError

#: command modules, in the order `spurious --help` lists them
COMMAND_MODULES = ("run", "problems", "certify", "symmetric", "study", "landscape", "export")


class OneLineParser(argparse.ArgumentParser):
    """argparse, but bad usage is one line on stderr and exit 2."""

    def error(self, message):
        sys.stderr.write(f"spurious: error: {message}\n")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    from ..core.version import __version__

    parser = OneLineParser(prog="spurious", description="Where gradient descent ends on neural-network "
                           "landscapes, and what each endpoint is.")
    parser.add_argument("--version", action="version", version=f"spurious {__version__}")
    subparsers = parser.add_subparsers(dest="command", parser_class=OneLineParser, metavar="COMMAND")
    subparsers.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(f"{__name__}.{name}").register(subparsers)
    return parser


class Terminated(BaseException):
    """SIGTERM, raised in the main thread like KeyboardInterrupt, so the same clean-up runs."""


#: seconds to wait for the clean-up after a signal before exiting anyway: the clean-up (releasing a
#: study's lock) waits for the compiled kernel or XLA compile in progress to return, which took more than
#: 3 s on a loaded 2-core machine (a fresh-clone CI run left a study's lock held)
GRACE_SECONDS = 10.0
MESSAGES = {130: "spurious: interrupted", 143: "spurious: terminated"}
_signalled: list[int] = []  # exit code of the first signal received


def _exit_now(code: int):
    try:
        store = sys.modules.get("spurious.store")
        if store is not None:  # a study's lock still held: the main thread never got to release it
            store.release_held_locks()
        sys.stderr.write(MESSAGES[code] + "\n")
        sys.stderr.flush()
    finally:
        os._exit(code)


def _inside_import(frame) -> bool:
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            return True
        frame = frame.f_back
    return False


def _on_signal(signum, frame):
    code = 128 + signum
    if _inside_import(frame):
        # Raising inside an import can leave a C extension half-initialized, and the interpreter
        # can crash on the way out; nothing has been written yet, so exit at once.
        _exit_now(code)
    if not _signalled:
        _signalled.append(code)
        # Python ignores exceptions raised where it cannot propagate them (a gc callback, a __del__);
        # then exit anyway, shortly: stores commit whole cells and files are renamed into place, so a
        # hard exit leaves nothing half-written, as SIGKILL does not
        timer = threading.Timer(GRACE_SECONDS, _exit_now, args=(code,))
        timer.daemon = True
        timer.start()
    raise KeyboardInterrupt() if signum == signal.SIGINT else Terminated()


def _unraisable(previous_hook):
    """Our signal's exception, where Python could not raise it (the exit timer takes over), is not
    an error to print; anything else goes to the previous hook."""
    def hook(unraisable):
        if not isinstance(unraisable.exc_value, (KeyboardInterrupt, Terminated)):
            previous_hook(unraisable)
    return hook


def _quiet_stdout():
    """After a closed pipe: send what is still buffered to /dev/null, so exit prints nothing."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def main(argv=None) -> int:
    """The command line. Bad usage and bad values: one line, exit 2, before any work; Ctrl-C: exit
    130 and SIGTERM: exit 143, with every write either whole or not made (stores commit whole cells;
    files are written to a temporary name and renamed); a closed pipe ends quietly (exit 141)."""
    # Installed first, before JAX or anything heavy is imported (the handlers import it lazily), and
    # put back at the end (main is also called in-process, by tests and notebooks).
    previous = {}
    previous_hook = sys.unraisablehook
    sys.unraisablehook = _unraisable(previous_hook)
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            if signal.getsignal(signum) is not signal.SIG_IGN:  # ignored: a background job of a shell
                previous[signum] = signal.signal(signum, _on_signal)
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        code = int(args.handler(args) or 0)
        sys.stdout.flush()  # here, so that a closed pipe is seen by the handler below, not at exit
        if _signalled:  # the signal's exception was swallowed on the way
            raise KeyboardInterrupt() if _signalled[0] == 130 else Terminated()
        return code
    except BaseException as error:  # noqa: B036 (every way out is decided here)
        if _signalled:
            # whatever the signal's exception became on its way out (e.g. an ImportError when it
            # lands while a C extension initializes), this is an interrupt
            sys.stderr.write(MESSAGES[_signalled[0]] + "\n")
            return _signalled[0]
        if isinstance(error, SpuriousError):
            sys.stderr.write(f"spurious: error: {error}\n")
            return 2
        if isinstance(error, FileNotFoundError):
            sys.stderr.write(f"spurious: error: no such file: {error.filename}\n")
            return 2
        if isinstance(error, (IsADirectoryError, NotADirectoryError, PermissionError)) and error.filename:
            sys.stderr.write(f"spurious: error: {error.filename}: {error.strerror}\n")
            return 2
        if isinstance(error, KeyboardInterrupt):  # raised by someone else's handler
            sys.stderr.write(MESSAGES[130] + "\n")
            return 130
        if isinstance(error, BrokenPipeError):
            _quiet_stdout()
            return 141
        raise
    finally:
        sys.unraisablehook = previous_hook
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def entry():
    """The `spurious` executable. After a signal, exit at once: letting the interpreter finalize
    while JAX's compiler threads still run can crash it."""
    code = main()
    for signum in (signal.SIGINT, signal.SIGTERM):  # the work is done: a signal now would only garble the exit
        signal.signal(signum, signal.SIG_IGN)
    if code in MESSAGES:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(code)
    sys.exit(code)
