"""`python -m lmc_toolkit` is the `lmc-toolkit` command."""

import sys

from lmc_toolkit.cli.main import main

sys.exit(main())
