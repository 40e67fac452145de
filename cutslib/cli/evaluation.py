"""``cuts baseline`` and ``cuts evaluate``: run a baseline, and score methods against ground truth."""

from __future__ import annotations


def _add_source(parser, masks: bool) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--dataset", help="a data set name (retina, brain_ventricles, brain_tumor_cuts, ...)")
    source.add_argument("--images", metavar="FOLDER", help="a folder of your own PNG/JPEG/TIFF/NIfTI images")
    if masks:
        parser.add_argument("--masks", metavar="FOLDER",
                            help="ground-truth label maps for --images (same file stems); required with --images")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def _load(args, masks: bool = False):
    from cutslib import data

    if args.images is not None:
        if masks and args.masks is None:
            raise ValueError("--images needs --masks FOLDER to evaluate against")
        return data.load_folder(args.images, mask_dir=args.masks if masks else None)
    return data.load(args.dataset, progress=not args.no_progress)


def run_baseline(args) -> int:
    from cutslib.baselines import baseline_dataset

    dataset = _load(args)
    print(baseline_dataset(dataset, args.method, args.seed, progress=not args.no_progress,
                           sam_checkpoint=args.sam_checkpoint))
    return 0


def run_evaluate(args) -> int:
    from cutslib.evaluate import evaluate_dataset, format_summary, summarize

    dataset = _load(args, masks=True)
    scores = evaluate_dataset(dataset, seeds=args.seed, config=args.profile, methods=args.methods,
                              limit=args.limit, progress=not args.no_progress, sam_checkpoint=args.sam_checkpoint)
    print(format_summary(summarize(scores)))
    print(f"scores: {scores.attrs['path']}")
    return 0


def register(sub):
    """Add ``baseline`` and ``evaluate`` to the ``cuts`` parser."""
    from cutslib.baselines import SAM_METHODS, UNSUPERVISED
    from cutslib.evaluate import DEFAULT_METHODS, METHODS

    p = sub.add_parser("baseline", help="run a baseline on every image (cached); prints the result folder",
                       description="Run one baseline on a data set or a folder; one <id>.npz per image.")
    _add_source(p, masks=False)
    p.add_argument("--method", required=True, choices=UNSUPERVISED + SAM_METHODS + ("watershed",))
    p.add_argument("--seed", type=int, default=1, help="random seed (random labels, DFC) (default 1)")
    p.add_argument("--sam-checkpoint", metavar="PATH", help="a Segment Anything checkpoint (SAM methods)")
    p.set_defaults(func=run_baseline)

    p = sub.add_parser("evaluate", help="score methods under every protocol; writes a tidy CSV, prints a summary",
                       description="Score methods against the ground truth (label hint, oracle, one click, "
                                   "label free) and print mean ± std over seeds beside the paper's Table 1.")
    _add_source(p, masks=True)
    p.add_argument("--seed", type=int, nargs="+", default=[1], help="one or more seeds (default 1)")
    p.add_argument("--profile", choices=("quick", "paper"), default="quick",
                   help="training settings of CUTS and the UNet (default quick)")
    p.add_argument("--methods", nargs="+", default=list(DEFAULT_METHODS), choices=METHODS + ("watershed", "unet"),
                   metavar="METHOD", help=f"methods to score (default: {' '.join(DEFAULT_METHODS)})")
    p.add_argument("--limit", type=int, help="score only the first N images")
    p.add_argument("--sam-checkpoint", metavar="PATH", help="a Segment Anything checkpoint (SAM methods)")
    p.set_defaults(func=run_evaluate)
