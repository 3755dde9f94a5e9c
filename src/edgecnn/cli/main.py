"""The command line: a thin shell that parses, calls one library function, and prints.

Each subcommand is a module in ``edgecnn.cli.commands`` defining ``HELP``, ``add_arguments(p)`` and
``run(args) -> int``; list it in ``COMMANDS``.
"""

from __future__ import annotations

import argparse
import importlib
import keyword
import sys

from ..errors import EdgecnnError

COMMANDS = ["list", "summary", "init", "classify", "eval", "train", "retarget", "import",
            "export", "compile", "bench", "estimate", "card", "gallery", "fetch", "serve",
            "quantize"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edgecnn", description="ImageNet classifiers from an architecture string to fast C.")
    parser.add_argument("--version", action="version", version=f"edgecnn {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        mod = importlib.import_module(f"edgecnn.cli.commands.{_module_name(name)}")
        p = sub.add_parser(name, help=mod.HELP, description=mod.HELP)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def _module_name(command: str) -> str:
    """A command's module: '-' becomes '_'; a Python keyword gets a trailing '_' (import_)."""
    name = command.replace("-", "_")
    return name + "_" if keyword.iskeyword(name) else name


def _version() -> str:
    from .._version import __version__

    return __version__


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except EdgecnnError as e:
        print(f"edgecnn {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"edgecnn {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `edgecnn list | head`
        return 0


if __name__ == "__main__":
    sys.exit(main())
