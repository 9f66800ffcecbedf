"""``python -m certctl_load.cli``: the same as the ``certctl-load`` command."""

import sys

from certctl_load.cli.main import main

sys.exit(main())
