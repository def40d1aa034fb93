"""The `lmc-toolkit` entry point: the parser of every registered subcommand, and `main`."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from lmc_toolkit.cli.common import COMMANDS
from lmc_toolkit.version import __version__

#: The modules that register subcommands, in the order `lmc-toolkit --help` lists them.
COMMAND_MODULES = ("train", "reproduce", "pruning", "synth", "connectivity", "align", "hessian")


def load_commands() -> None:
    """Import every command module of `lmc_toolkit.cli`: each registers its subcommands."""
    for name in COMMAND_MODULES:
        importlib.import_module(f"lmc_toolkit.cli.{name}")


def parser() -> argparse.ArgumentParser:
    load_commands()
    p = argparse.ArgumentParser(
        prog="lmc-toolkit",
        description="Linear mode connectivity, landscapes, Hessians and lottery tickets.",
    )
    p.add_argument("--version", action="version", version=f"lmc-toolkit {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for name, (fn, help_text) in COMMANDS.items():
        sp = sub.add_parser(name, help=help_text, description=help_text)
        configure = getattr(fn, "configure", None)
        if configure:
            configure(sp)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    if not args.command:
        p.print_help()
        return 1
    try:
        return COMMANDS[args.command][0](args)
    except (ValueError, TypeError, FileNotFoundError) as exc:
        print(f"lmc-toolkit {args.command}: error: {exc}", file=sys.stderr)
        return 2
