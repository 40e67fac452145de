"""``cuts segment``: stage 2 (diffusion condensation, persistent map, spectral k-means) per image, cached."""

from __future__ import annotations


def run_segment(args) -> int:
    from cutslib import segment

    progress = not args.no_progress
    if args.images is not None:
        if args.checkpoint is None:
            raise ValueError("--images needs --checkpoint PATH (a trained encoder, e.g. from `cuts train`)")
        folder = segment.segment_folder(args.images, args.checkpoint, out=args.out, seed=args.seed,
                                        progress=progress)
    else:
        if args.checkpoint is not None or args.out is not None:
            raise ValueError("--checkpoint and --out go with --images; --dataset uses its own cached encoder")
        from cutslib import data

        if args.limit is not None and args.limit < 1:
            raise ValueError(f"--limit must be at least 1, got {args.limit}")
        dataset = data.load(args.dataset, progress=progress)
        folder = segment.segment_dataset(dataset, args.seed, args.profile, progress=progress, limit=args.limit)
    print(folder)
    return 0


def register(sub):
    """Add ``segment`` to the ``cuts`` parser."""
    p = sub.add_parser(
        "segment",
        help="coarse-to-fine segmentations of every image (stage 2); prints the output folder",
        description="Diffusion condensation of each image's pixel embeddings: writes one <id>.npz per image with "
        "the label map of every salient level, the persistent map and the spectral k-means map. "
        "Cached and resumable (rerun to resume).",
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--dataset", help="a data set name (retina, brain_ventricles, ..., demo); trains and "
                        "embeds first if needed")
    source.add_argument("--images", metavar="FOLDER", help="a folder of your own images (needs --checkpoint)")
    p.add_argument("--checkpoint", metavar="PATH", help="trained encoder checkpoint (with --images)")
    p.add_argument("--out", metavar="DIR", help="output folder (with --images; default: a cached results folder)")
    p.add_argument("--seed", type=int, default=1, help="random seed of the training run and of stage 2 (default 1)")
    p.add_argument("--profile", choices=("quick", "paper"), default="quick",
                   help="stage-1 training settings (default quick)")
    p.add_argument("--limit", type=int, metavar="N", help="segment only the first N images")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.set_defaults(func=run_segment)
