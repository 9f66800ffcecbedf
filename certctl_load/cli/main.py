"""The ``certctl-load`` command: reference target, demo storm, fleet seeding, capacity search."""

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import importlib  # noqa: E402
import sys  # noqa: E402
from collections.abc import Callable  # noqa: E402

from certctl_load.errors import HarnessError  # noqa: E402

# Each subcommand module defines HELP, add_arguments(parser) and run(args) -> exit code.
SUBCOMMANDS = {
    "demo": "certctl_load.cli.demo",
    "target": "certctl_load.target.cli",
    "seed": "certctl_load.cli.seed",
    "unseed": "certctl_load.cli.unseed",
    "capacity": "certctl_load.cli.capacity",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="certctl-load", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module_name in SUBCOMMANDS.items():
        module = importlib.import_module(module_name)
        sub = commands.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(sub)
        sub.set_defaults(run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except HarnessError as error:
        print(f"certctl-load {args.command}: {error}", file=sys.stderr)
        return error.exit_code


if __name__ == "__main__":
    sys.exit(main())
