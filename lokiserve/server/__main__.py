"""``python -m lokiserve.server`` == ``lokiserve serve``."""

import argparse
import sys

from lokiserve.server.launcher import add_serve_arguments, run_serve


def main(argv: list[str] | None = None) -> int:
    parser = add_serve_arguments(argparse.ArgumentParser(prog="lokiserve serve", description=__doc__))
    args, passthrough = parser.parse_known_args(argv)
    return run_serve(args, passthrough)


if __name__ == "__main__":
    sys.exit(main())
