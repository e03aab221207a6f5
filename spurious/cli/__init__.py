"""The `spurious` command. Each command group lives in its own module of this package and
exposes `register(subparsers)`, which adds its parsers with `handler=` set."""
from __future__ import annotations

import argparse
import importlib
import sys

from ..core.errors import SpuriousError

#: command modules, in the order `spurious --help` lists them
COMMAND_MODULES = ("run", "problems", "certify", "study")


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


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except SpuriousError as error:
        sys.stderr.write(f"spurious: error: {error}\n")
        return 2
    except FileNotFoundError as error:
        sys.stderr.write(f"spurious: error: no such file: {error.filename}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("spurious: interrupted\n")
        return 130
