"""The cuts command line: cuts data | train | embed | segment | baseline | evaluate.

Each group of sub-commands lives in its own module with a ``register(subparsers)`` function that adds its
parsers and sets ``func`` to the function that runs it. Building the parser imports no heavy library (torch,
pandas, scikit-image): ``cuts --help``, ``cuts --version`` and ``cuts data list`` start fast.
"""

from __future__ import annotations

import argparse
import logging
import sys

from cutslib import __version__
from cutslib.cli import data, evaluation, stage1, stage2

GROUPS = (data, stage1, stage2, evaluation)
DESCRIPTION = ("CUTS: unsupervised segmentation of medical (or any) images. Stage 1 trains a pixel encoder "
               "with no labels, stage 2 condenses its embeddings into coarse-to-fine segmentations.")
EPILOG = ("Results are cached under results/ (or $CUTS_RESULTS_DIR) and resume where an interrupted run "
          "stopped. Your own images: cuts segment --images FOLDER.")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cuts", description=DESCRIPTION, epilog=EPILOG)
    parser.add_argument("--version", action="version", version=f"cuts (cutslib) {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in GROUPS:
        group.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"cuts {args.command}: %(message)s"))
    logger = logging.getLogger("cutslib")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        return args.func(args) or 0
    except KeyboardInterrupt:
        print(f"cuts {args.command}: interrupted; run the same command again to resume where it stopped",
              file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError, OSError, KeyError, RuntimeError) as exc:
        print(f"cuts {args.command}: error: {exc}", file=sys.stderr)
        return 2
    finally:
        logger.removeHandler(handler)


if __name__ == "__main__":
    sys.exit(main())
