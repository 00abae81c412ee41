"""``python -m lokiserve.server`` == ``lokiserve serve`` (one parser: the CLI's)."""

import sys

from lokiserve.cli import main

if __name__ == "__main__":
    sys.exit(main(["serve", *sys.argv[1:]]))
