"""`python -m streamguard.worker` runs the worker (as `streamguard worker` does)."""

import sys

from streamguard.worker.main import main_worker

sys.exit(main_worker(sys.argv[1:]))
