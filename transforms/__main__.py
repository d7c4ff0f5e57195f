"""``python -m transforms``: the operator command line (see ``transforms.cli``)."""

import sys

from transforms.cli import main

sys.exit(main())
