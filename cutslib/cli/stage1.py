"""``cuts train`` and ``cuts embed``: stage 1 on a named data set or on a folder of the user's own images."""

from __future__ import annotations


def add_source_arguments(parser) -> None:
    """--dataset NAME | --images FOLDER, --seed, --profile."""
    from cutslib.train import PROFILES

    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--dataset", help="a data set name (retina, brain_ventricles, ..., demo)")
    source.add_argument("--images", metavar="FOLDER",
                        help="a folder of your own PNG/JPEG/TIFF/NIfTI images (no labels needed)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument("--profile", choices=sorted(PROFILES), default="quick",
                        help="training settings: quick (CPU, minutes) or paper (200 epochs) (default quick)")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def load_source(args):
    """The Dataset named by --dataset or read from --images."""
    from cutslib import data

    if args.images is not None:
        return data.load_folder(args.images)
    return data.load(args.dataset, progress=not args.no_progress)


def run_train(args) -> int:
    from cutslib.train import train

    checkpoint = train(load_source(args), args.seed, args.profile, progress=not args.no_progress)
    print(checkpoint)
    return 0


def run_embed(args) -> int:
    from cutslib.embed import embed_dataset

    embeddings = embed_dataset(load_source(args), args.seed, args.profile, progress=not args.no_progress)
    print(embeddings.path)
    return 0


def register(sub):
    """Add ``train`` and ``embed`` to the ``cuts`` parser."""
    p = sub.add_parser("train", help="train the CUTS encoder (stage 1); prints the best checkpoint's path",
                       description="Train the CUTS encoder; cached and resumable (rerun to resume).")
    add_source_arguments(p)
    p.set_defaults(func=run_train)
    p = sub.add_parser("embed", help="embed every pixel of every image (trains first if needed); prints the folder",
                       description="Write per-pixel latents and reconstructions; trains first if needed.")
    add_source_arguments(p)
    p.set_defaults(func=run_embed)
