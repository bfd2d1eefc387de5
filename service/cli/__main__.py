"""`python -m service.cli`: the `tunesmith` command."""

import sys

from service.cli import main

sys.exit(main())
