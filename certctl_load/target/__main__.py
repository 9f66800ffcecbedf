"""``python -m certctl_load.target``: the reference target alone, without the other subcommands.

The same as ``certctl-load target``; tests start it this way (see ``certctl_load.target.process``).
"""

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import sys  # noqa: E402

from certctl_load.errors import HarnessError  # noqa: E402
from certctl_load.target import cli  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="certctl-load target", description=cli.HELP)
    cli.add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return cli.run(args)
    except HarnessError as error:
        print(f"certctl-load target: {error}", file=sys.stderr)
        return error.exit_code


if __name__ == "__main__":
    sys.exit(main())
