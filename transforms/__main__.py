"""``python -m transforms``: the operator command line (see ``transforms.cli.main``)."""

import sys

from transforms.cli.main import main

sys.exit(main())
