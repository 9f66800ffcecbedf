"""``python -m certctl_load.target``: the reference target alone, the same as ``certctl-load target``
(tests start it this way, see ``certctl_load.target.process``)."""

import sys

from certctl_load.cli.main import main

sys.exit(main(["target", *sys.argv[1:]]))
