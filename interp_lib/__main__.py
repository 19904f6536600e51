"""``python -m interp_lib``: see interp_lib/cli.py."""
import sys

from .cli import main

sys.exit(main())
