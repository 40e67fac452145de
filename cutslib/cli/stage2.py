"""``cuts segment``: stage 2 (diffusion condensation, persistent map, spectral k-means) per image, cached."""

from __future__ import annotations

import logging

from cutslib.cli.common import add_profile, add_source, add_stage2, apply_stage2

DESCRIPTION = (
    "Diffusion condensation of each image's pixel embeddings: the label map of every salient level, the "
    "persistent map and the spectral k-means map, one <id>.npz per image. Cached and resumable (rerun to "
    "resume). With --images FOLDER it also writes, per image and at the image's original size, PNG label maps "
    "in stable-id colours, the label-free foreground as a binary PNG and a contact sheet <id>_sheet.png; "
    "without --checkpoint it first trains the encoder on the folder (cached by content). Images are processed "
    "at --size: the long side scaled to S (default 128), aspect kept, padded to S x S; the outputs are cropped "
    "back and resized to each image's own size (nearest neighbour).")


def run_segment(args) -> int:
    apply_stage2(args)
    from cutslib import data, segment

    progress = not args.no_progress
    data.n_first(args.limit, 1, "--limit")
    if args.images is not None:
        from cutslib.folder import segment_folder

        if args.jobs is not None:
            raise ValueError("--jobs goes with --dataset; a folder is segmented one image at a time")
        folder = segment_folder(args.images, args.checkpoint, out=args.out, seed=args.seed,
                                size=data.SIZE if args.size is None else args.size, profile=args.profile,
                                limit=args.limit, progress=progress)
        logging.getLogger("cutslib").info("open %s/*_sheet.png (one contact sheet per image)", folder)
    else:
        if args.checkpoint is not None or args.out is not None or args.size is not None:
            raise ValueError("--checkpoint, --out and --size go with --images; --dataset uses its own cached "
                             "encoder at 128 x 128")
        from cutslib.estimate import describe, stage1_seconds, stage2_seconds

        dataset = data.load(args.dataset, progress=progress)
        config = args.profile or "quick"
        parts = [(f"Stage 1, seed {args.seed}", stage1_seconds(dataset, args.seed, config)),
                 ("Stage 2", stage2_seconds(dataset, args.seed, config, data.n_first(args.limit, len(dataset))))]
        print(describe(sum(s for _, s in parts), parts), flush=True)
        folder = segment.segment_dataset(dataset, args.seed, config, progress=progress,
                                         limit=args.limit, jobs=args.jobs)
    print(folder)
    return 0


def register(sub):
    """Add ``segment`` to the ``cuts`` parser."""
    p = sub.add_parser("segment", description=DESCRIPTION,
                       help="coarse-to-fine segmentations of every image (stage 2); prints the output folder")
    add_source(p, "a folder of your own images: trains on it first unless --checkpoint is given")
    p.add_argument("--checkpoint", metavar="PATH",
                   help="a trained encoder (the best.pt that cuts train prints; with --images)")
    p.add_argument("--out", metavar="DIR", help="output folder (with --images; default: a cached results folder "
                   "keyed by the images' content and the settings). A folder made with other settings is refused")
    p.add_argument("--seed", type=int, default=1, help="random seed of the training run and of stage 2 (default 1)")
    add_profile(p)
    add_stage2(p)
    p.add_argument("--limit", type=int, metavar="N", help="segment only the first N images (training uses all)")
    p.add_argument("--jobs", type=int, metavar="N", help="with --dataset: segment N images at a time, in worker "
                   "processes with cores / N threads each; the same output as one at a time (default: $CUTS_JOBS "
                   "or 1)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.set_defaults(func=run_segment)
