"""``python -m livereader``: the same as the ``livereader`` command."""

import sys

from livereader.cli import main

sys.exit(main())
