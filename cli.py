"""Run the Formwork CLI from a checkout: ``python cli.py validate`` is ``formwork validate``."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "platform"))

from formwork.cli import main  # noqa: E402

if __name__ == "__main__":
    main()
