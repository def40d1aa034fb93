"""The `lmc-toolkit` command: one subcommand per job, each a thin layer over the library."""

from lmc_toolkit.cli.main import main, parser

__all__ = ["main", "parser"]
