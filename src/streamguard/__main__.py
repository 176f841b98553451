"""`python -m streamguard` runs the command line."""

import sys

from streamguard.cli import main

sys.exit(main())
