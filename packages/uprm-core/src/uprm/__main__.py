"""``python -m uprm`` runs the ``uprm`` command line."""

import sys

from uprm.cli import main

sys.exit(main())
