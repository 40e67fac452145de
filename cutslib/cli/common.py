"""Arguments shared by several ``cuts`` sub-commands, and the names they accept.

The names are written out here rather than imported, so that building the parser imports neither torch nor
pandas; ``tests/test_cli.py`` checks that they match the library's.
"""

from __future__ import annotations

#: cutslib.train.PROFILES, sorted: for the help text only (the library checks the name, so a new profile works
#: before this list learns it).
PROFILES = ("arxiv2023", "arxiv2023-fast", "fast", "figures-quick", "paper", "quick", "smoke")
#: cutslib.baselines.UNSUPERVISED + SAM_METHODS + ("watershed",): what ``cuts baseline --method`` runs.
BASELINES = ("random", "watershed_otsu", "felzenszwalb", "slic", "dfc", "sam_point", "sam_box", "watershed")
#: cutslib.evaluate.METHODS + ("watershed", "unet"), and DEFAULT_METHODS.
METHODS = ("random", "watershed_otsu", "felzenszwalb", "slic", "dfc", "unet_supervised", "sam_point", "sam_box",
           "cuts_kmeans", "cuts_diffusion_persistent", "cuts_diffusion_persistent2023", "cuts_diffusion_best_oracle",
           "cuts_diffusion_fixed_level", "cuts_catch2023_persistent", "cuts_catch2023_best_oracle", "watershed", "unet")
DEFAULT_METHODS = ("random", "watershed_otsu", "felzenszwalb", "slic", "dfc", "unet_supervised", "cuts_kmeans",
                   "cuts_diffusion_persistent", "cuts_diffusion_persistent2023", "cuts_diffusion_best_oracle",
                   "cuts_diffusion_fixed_level")
#: cutslib.segment.DEFAULT_PATH: the Stage-2 path when neither --stage2 nor $CUTS_STAGE2 says.
DEFAULT_STAGE2 = "fast"
SIZE_HELP = ("with --images: the model's image side S (default 128, as the paper; at most 512). Each image's "
             "long side is scaled to S, the short side in proportion (aspect kept), and it is padded to S x S")


def add_source(parser, images_help: str) -> None:
    """--dataset NAME | --images FOLDER, with --size."""
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--dataset", metavar="NAME",
                        help="a data set: retina, brain_ventricles, brain_tumor_cuts, brain_tumor_lgg, berkeley, demo")
    source.add_argument("--images", metavar="FOLDER", help=images_help)
    parser.add_argument("--size", type=int, metavar="S", help=SIZE_HELP)


PROFILE_HELP = ("quick (5 epochs, minutes on a CPU), paper (the paper's 200 epochs; wants a GPU), fast (paper with "
                "the windowed encoder: 200 epochs in minutes on a CPU), arxiv2023 (the 2023 preprint's settings), arxiv2023-fast (windowed), smoke (one short epoch, for tests)")


def add_profile(parser, default: str = "quick") -> None:
    parser.add_argument("--profile", metavar="PROFILE",
                        help=f"stage-1 training settings: {PROFILE_HELP} (default {default})")


def add_stage2(parser) -> None:
    parser.add_argument("--stage2", choices=("fast", "exact"),
                        help="the Stage-2 path (data sets and folders): 'exact' reproduces the reference's potentials "
                             "bit for bit, 'fast' agrees with it, takes less CPU and bounds the memory of images with "
                             f"large uniform regions (README, 'Speed'); default $CUTS_STAGE2 or '{DEFAULT_STAGE2}'")


def apply_stage2(args) -> None:
    """Make --stage2 the Stage-2 path of this process's runs, data sets and folders (as $CUTS_STAGE2 does)."""
    if getattr(args, "stage2", None):
        import os

        os.environ["CUTS_STAGE2"] = args.stage2


def load_source(args, mask_dir=None):
    """The Dataset named by --dataset, or read from --images at --size."""
    from cutslib import data

    if args.images is not None:
        return data.load_folder(args.images, mask_dir=mask_dir, size=data.SIZE if args.size is None else args.size)
    if args.size is not None:
        raise ValueError("--size goes with --images; the built-in data sets are prepared at 128 x 128")
    return data.load(args.dataset, progress=not args.no_progress)
