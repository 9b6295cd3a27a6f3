"""``python -m batchcraft``: the same as the ``batchcraft`` command."""

import sys

from batchcraft.cli import main

sys.exit(main())
