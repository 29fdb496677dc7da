"""Run the `bridge` command as `python -m bridge`."""

import sys

from bridge.cli import main

sys.exit(main())
