"""Why the persistent map's Dice moves so much from seed to seed: a per-image lottery, from the committed scores.

Not a timing, and no compute: it reads ``figures/published/<dataset>/<profile>/scores.csv`` for two profiles (by
default the windowed ``fast`` and the dense ``paper``). An image *fails* in a run when its persistent map (label
hint) is more than ``--gap`` Dice below the run's best level (oracle). For each seed it prints the persistent Dice,
the number of failed images and the mean Dice of the failed and of the other images; then how far the failures
are the same images across runs, the per-image difference between the profiles, and how many seeds per profile
a 95% interval of half-width ``--target`` on the difference of means would need, at the seed-to-seed spread seen.

    python benchmarks/persistent_lottery.py [--dataset retina] [--profiles fast paper] [--gap 0.2]
"""

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from cutslib.published import read_scores

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--dataset", default="retina")
parser.add_argument("--profiles", nargs=2, default=["fast", "paper"], metavar=("A", "B"))
parser.add_argument("--gap", type=float, default=0.2, help="an image fails when best level - persistent > GAP")
parser.add_argument("--target", type=float, default=0.01, help="half-width wanted for the difference's interval")
parser.add_argument("--root", default="figures/published")
args = parser.parse_args()


def dice(scores, method, protocol):
    rows = scores[(scores["method"] == method) & (scores["protocol"] == protocol) & (scores["metric"] == "dice")]
    return rows.groupby(["seed", "image_id"])["value"].mean()  # mean over annotators where there are several


per_seed, per_image = [], {}
for profile in args.profiles:
    path = Path(args.root) / args.dataset / profile / "scores.csv"
    if not path.exists():
        raise SystemExit(f"no record {path}: run `python -m cutslib.published --dataset {args.dataset} "
                         f"--profile {profile}` first")
    scores = read_scores(path)  # refuses a file that is not a record's scores table
    persistent = dice(scores, "cuts_diffusion_persistent", "label_hint")
    best = dice(scores, "cuts_diffusion_best_oracle", "oracle")
    failed = (best - persistent).reindex(persistent.index) > args.gap
    for seed in sorted(persistent.index.get_level_values("seed").unique()):
        p, f = persistent.loc[seed], failed.loc[seed]
        per_seed.append(dict(profile=profile, seed=seed, persistent=p.mean(), best_level=best.loc[seed].mean(),
                             failed_images=int(f.sum()), dice_failed=p[f].mean(), dice_others=p[~f].mean()))
    per_image[profile] = pd.DataFrame({"failure_rate": failed.groupby(level="image_id").mean(),
                                       "dice": persistent.groupby(level="image_id").mean()})

table = pd.DataFrame(per_seed)
print(f"{args.dataset}: persistent map (2024 rule, label hint) per seed; an image fails when it is more than "
      f"{args.gap} below the best level")
print(table.round(3).to_string(index=False))

a, b = (per_image[p] for p in args.profiles)
print(f"\nimages: {len(a)}; failure rate per image: {args.profiles[0]} {a.failure_rate.mean():.3f}, "
      f"{args.profiles[1]} {b.failure_rate.mean():.3f}; correlation of the two over images "
      f"{a.failure_rate.corr(b.failure_rate):.2f}")
print(f"images that fail in every run of both: {int(((a.failure_rate == 1) & (b.failure_rate == 1)).sum())}; "
      f"in no run of either: {int(((a.failure_rate == 0) & (b.failure_rate == 0)).sum())}")
difference = a.dice - b.dice
print(f"per-image {args.profiles[0]} - {args.profiles[1]} (mean over seeds): mean {difference.mean():+.3f}, "
      f"median {difference.median():+.3f}")

spread = table.groupby("profile")["persistent"].std(ddof=0)  # as the tables give it
failures = table.groupby("profile")["failed_images"].agg(["mean", "std"])
print("\nseed-to-seed std of the persistent Dice (ddof 0, as in the tables): "
      + ", ".join(f"{p} {spread[p]:.3f} ({failures.loc[p, 'mean']:.1f} ± {failures.loc[p, 'std']:.1f} failed "
                  "images)" for p in args.profiles))
sigma = float(np.sqrt((table.groupby("profile")["persistent"].var(ddof=1)).mean()))  # the unbiased pooled one
seeds = int(np.ceil(2 * (1.96 * sigma / args.target) ** 2))
print(f"seeds per profile for a 95% interval of ±{args.target} on the difference of means at that spread "
      f"(pooled std {sigma:.3f}): {seeds}")
