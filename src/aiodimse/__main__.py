"""``python -m aiodimse``: the same as the ``aiodimse`` console script."""

import sys

from .apps.__main__ import main

sys.exit(main())
