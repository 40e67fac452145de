"""``cuts train`` and ``cuts embed``: stage 1 on a named data set or on a folder of the user's own images."""

from __future__ import annotations

from cutslib.cli.common import add_profile, add_source, load_source


def add_source_arguments(parser) -> None:
    """--dataset NAME | --images FOLDER, --size, --seed, --profile."""
    add_source(parser, "a folder of your own PNG/TIFF/NIfTI/JPEG images (no labels needed)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    add_profile(parser)
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def run_train(args) -> int:
    from cutslib.train import train

    checkpoint = train(load_source(args), args.seed, args.profile or "quick", progress=not args.no_progress)
    print(checkpoint)
    return 0


def run_embed(args) -> int:
    from cutslib.embed import embed_dataset

    embeddings = embed_dataset(load_source(args), args.seed, args.profile or "quick", progress=not args.no_progress)
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
