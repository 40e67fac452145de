"""The ``cuts`` command line: ``cuts data | train | embed | segment | baseline | evaluate``.

Each group of sub-commands lives in its own module with a ``register(subparsers)`` function that adds its
parsers and sets ``func`` to the function that runs it.
"""

from __future__ import annotations

import argparse
import sys

from cutslib.cli import data, evaluation, stage1, stage2

GROUPS = (data, stage1, stage2, evaluation)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cuts", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        group.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args) or 0
    except (ValueError, FileNotFoundError, OSError, KeyError, RuntimeError) as exc:
        print(f"cuts {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
