"""``python -m livereader.bench``: the same as ``livereader-bench``."""

import sys

from livereader.bench.cli import main

sys.exit(main())
