"""Where the persistent map loses to the best salient level: a picture of the worst images.

Not a timing. For one trained encoder (profile, seed) whose Stage 2 is cached, it ranks the images by how far
the 2023 Stage 2's persistent map (label hint) falls below its own best level (oracle), and draws the worst ones:
the image with the ground truth, then for the 2023 Stage 2 (CATCH-style) and for Multiscale PHATE the persistent
map and the best level, each as a label map with the label-hint mask outlined and its Dice. Prints the ranking.

    python benchmarks/persistent_gap.py --profile arxiv2023 --seed 2021 [--n 4] [--out PNG]
"""

import argparse
import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from PIL import Image
from skimage.segmentation import find_boundaries

from cutslib import colors, data, metrics, protocol, segment

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--dataset", default="retina")
parser.add_argument("--profile", default="arxiv2023")
parser.add_argument("--seed", type=int, default=2021)
parser.add_argument("--n", type=int, default=4, help="images to draw (the worst)")
parser.add_argument("--out", default=None, help="default: figures/published/<dataset>/<profile>/persistent_worst.png")
args = parser.parse_args()

dataset = data.load(args.dataset, progress=False)
folders = {stage2: segment.segment_dataset(dataset, args.seed, args.profile, progress=False, stage2=stage2)
           for stage2 in segment.STAGE2}


def dice(labels, truth):
    return metrics.binary_scores(protocol.label_hint(labels, truth), truth)["dice"]


rows = []
for i, image_id in enumerate(dataset.ids):
    truth = dataset.masks[i]
    maps = {}
    for stage2, keys, rule in (("catch2023", segment.CATCH_KEYS, "persistent2023"),
                               ("multiscale", segment.KEYS, "persistent")):
        seg = segment.load_segmentation(folders[stage2], image_id, keys)
        best = max(seg["levels"], key=lambda level: dice(level, truth))
        maps[stage2] = {"persistent": seg[rule], "best level": best}
    gap = dice(maps["catch2023"]["best level"], truth) - dice(maps["catch2023"]["persistent"], truth)
    rows.append((gap, i, maps))
rows.sort(key=lambda r: -r[0])
print(f"{args.dataset} {args.profile} seed {args.seed}: the 2023 Stage 2's best level minus its persistent map, Dice")
print("  " + ", ".join(f"{dataset.ids[i]} {gap:+.3f}" for gap, i, _ in rows[: 2 * args.n]))
print(f"  images more than 0.2 below: {sum(gap > 0.2 for gap, _, _ in rows)} of {len(rows)}")

titles = ["image, ground truth", "2023 Stage 2:\npersistent (2023 rule)", "2023 Stage 2:\nbest level (oracle)",
          "Multiscale PHATE:\npersistent (2024 rule)", "Multiscale PHATE:\nbest level (oracle)"]
fig, axes = plt.subplots(args.n, 5, figsize=(10, 2.1 * args.n), layout="constrained", squeeze=False)
for row, (gap, i, maps) in zip(axes, rows[: args.n]):
    image, truth = dataset.images[i], dataset.masks[i]
    panels = [None, maps["catch2023"]["persistent"], maps["catch2023"]["best level"],
              maps["multiscale"]["persistent"], maps["multiscale"]["best level"]]
    for ax, labels in zip(row, panels):
        ax.set(xticks=[], yticks=[])
        if labels is None:
            ax.imshow(dataset.display(i))  # the ground truth's boundary in yellow
            ax.set_ylabel(dataset.ids[i], fontsize=8)
            continue
        ax.imshow(colors.colorize(labels, colors.label_colors(labels[None], (image + 1) / 2)))
        ax.imshow(np.ma.masked_where(~find_boundaries(protocol.label_hint(labels, truth)), np.ones_like(truth)),
                  cmap="autumn", interpolation="nearest")
        ax.text(2, 2, f"Dice {dice(labels, truth):.2f}", va="top", fontsize=8, color="white",
                bbox=dict(facecolor="black", alpha=0.6, pad=1, lw=0))
for ax, title in zip(axes[0], titles):
    ax.set_title(title, fontsize=9)
fig.suptitle(f"{args.dataset}, `{args.profile}` seed {args.seed}: the {args.n} images where the 2023 persistent map "
             "falls furthest below its best level (red: the label-hint mask)", fontsize=9)
out = args.out or f"figures/published/{args.dataset}/{args.profile}/persistent_worst.png"
buffer = io.BytesIO()
fig.savefig(buffer, format="png", dpi=90)
Image.open(buffer).convert("RGB").quantize(256).save(out, optimize=True)  # a palette PNG keeps the record small
print(out)
