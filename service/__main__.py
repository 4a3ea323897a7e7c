"""`python -m service`: the `signer` command, for a virtualenv not on PATH."""

import sys

from .cli import main

sys.exit(main())
