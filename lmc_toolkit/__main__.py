"""`python -m lmc_toolkit` is the `lmc-toolkit` command."""

import sys

from lmc_toolkit.cli import main

sys.exit(main())
