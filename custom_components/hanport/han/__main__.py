"""``python -m custom_components.hanport.han``: the hanport command line (see ``cli``)."""

from __future__ import annotations

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
