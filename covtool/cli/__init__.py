"""The command line: one module per command family, registered in :mod:`covtool.cli.app`."""
