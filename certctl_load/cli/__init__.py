"""The ``certctl-load`` command and its subcommands."""
