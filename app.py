"""Entry point: `python app.py` builds the app from settings and serves it."""

import sys

from bot.cli import main

if __name__ == "__main__":
    sys.exit(main(["serve"]))
