"""Subcommands of `lmc-toolkit`, one module per area; `lmc_toolkit.cli` imports them all.

A module here registers its commands with `lmc_toolkit.cli.command` (and `fn.configure` for
its options); keep the work in the library and only parse, call and print here.
"""
