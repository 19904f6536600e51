"""``python -m interp_lib``: see interp_lib/course/cli.py."""

import sys

from .course.cli import main

sys.exit(main())
