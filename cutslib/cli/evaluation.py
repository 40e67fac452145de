"""``cuts baseline`` and ``cuts evaluate``: run a baseline, and score methods against ground truth."""

from __future__ import annotations

from cutslib.cli.common import (BASELINES, DEFAULT_METHODS, METHODS, add_profile, add_source, add_stage2,
                                apply_stage2, load_source)


def _add_source(parser, masks: bool) -> None:
    add_source(parser, "a folder of your own PNG/TIFF/NIfTI/JPEG images")
    if masks:
        parser.add_argument("--masks", metavar="FOLDER",
                            help="ground-truth label maps for --images: same file stems, same sizes, lossless "
                                 "(PNG/TIFF, not JPEG); required with --images")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def _load(args, masks: bool = False):
    if masks and args.images is not None and args.masks is None:
        raise ValueError("--images needs --masks FOLDER to evaluate against")
    if masks and args.images is None and args.masks is not None:
        raise ValueError("--masks goes with --images; a built-in data set has its own masks")
    return load_source(args, mask_dir=args.masks if masks else None)


def run_baseline(args) -> int:
    from cutslib.baselines import baseline_dataset

    dataset = _load(args)
    print(baseline_dataset(dataset, args.method, args.seed, progress=not args.no_progress,
                           sam_checkpoint=args.sam_checkpoint))
    return 0


def run_evaluate(args) -> int:
    apply_stage2(args)
    from cutslib.data import n_first

    n_first(args.limit, 1, "--limit")
    dataset = _load(args, masks=True)
    from cutslib.estimate import describe, evaluate_seconds
    from cutslib.evaluate import evaluate_dataset, format_summary, summarize

    config = args.profile or "quick"
    print(describe(*evaluate_seconds(dataset, args.seed, config, args.methods, args.limit)), flush=True)
    scores = evaluate_dataset(dataset, seeds=args.seed, config=config, methods=args.methods,
                              limit=args.limit, progress=not args.no_progress, sam_checkpoint=args.sam_checkpoint)
    print(format_summary(summarize(scores)))
    print(f"scores: {scores.attrs['path']}")
    return 0


def register(sub):
    """Add ``baseline`` and ``evaluate`` to the ``cuts`` parser."""
    p = sub.add_parser("baseline", help="run a baseline on every image (cached); prints the result folder",
                       description="Run one baseline on a data set or a folder; one <id>.npz per image.")
    _add_source(p, masks=False)
    p.add_argument("--method", required=True, choices=BASELINES)
    p.add_argument("--seed", type=int, default=1, help="random seed (random labels, DFC) (default 1)")
    p.add_argument("--sam-checkpoint", metavar="PATH", help="a Segment Anything checkpoint (SAM methods)")
    p.set_defaults(func=run_baseline)

    p = sub.add_parser("evaluate", help="score methods under every protocol; writes a tidy CSV, prints a summary",
                       description="Score methods against the ground truth (label hint, oracle, one click, "
                                   "label free) and print mean ± std over seeds beside the paper's Table 1. "
                                   "All methods with 3 seeds take hours on a CPU; start with --limit and one "
                                   "seed.")
    _add_source(p, masks=True)
    p.add_argument("--seed", type=int, nargs="+", default=[1], help="one or more seeds (default 1)")
    add_profile(p)
    add_stage2(p)
    p.add_argument("--methods", nargs="+", default=list(DEFAULT_METHODS), choices=METHODS, metavar="METHOD",
                   help=f"methods to score, any of: {', '.join(METHODS)} (default: {' '.join(DEFAULT_METHODS)})")
    p.add_argument("--limit", type=int, metavar="N", help="score only the first N images")
    p.add_argument("--sam-checkpoint", metavar="PATH", help="a Segment Anything checkpoint (SAM methods)")
    p.set_defaults(func=run_evaluate)
