"""``python -m livereader.train`` (and ``torchrun ... -m livereader.train``): the same as ``livereader-train``."""

import sys

from livereader.train.cli import main

sys.exit(main())
