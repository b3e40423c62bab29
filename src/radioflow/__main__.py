"""``python -m radioflow``: the command line."""
import sys

from radioflow.cli import main

sys.exit(main())
