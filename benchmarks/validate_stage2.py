"""Stage-2 validation: the fast path against the exact path, measured by the exact path's own seed-to-seed spread.

Reads segmentation folders ``ROOT/{exact,fast}-seed{k}/`` (one ``<id>.npz`` per image, as
``cutslib.segment.segment_latents`` writes them, e.g. by ``python benchmarks/validate_stage2.py --run``) of
one data set's images, and prints:

- the tolerance: the exact path with two Stage-2 seeds, per pair of seeds: the median ARI at matched salient
  levels (for each level of one, the level of the other with the nearest cluster count), the ARI of the
  k-means maps, and the mean Dice under the label hint (persistent maps, k-means) and the oracle;
- the agreement: the same figures for the fast path against the exact path with the same seed;
- the verdict on the two criteria (issue 10): median matched-level ARI (fast vs exact) >= the exact path's
  seed-to-seed median, and each mean Dice within the exact path's seed-to-seed standard deviation; beside
  each, how far it could move by the choice of images alone (a bootstrap interval for the ARI medians, a
  95% interval of the paired per-image Dice differences).

    python benchmarks/validate_stage2.py --dataset retina --root DIR [--embeddings DIR --run fast:1 exact:1 ...]

``--run mode:seed ...`` first segments the images of ``--embeddings`` (a cached ``cutslib.embed`` folder)
into ROOT, resumably (``--limit N``: its first N images only), and prints each run's seconds per image;
``--csv FILE`` writes the per-image figures.
"""

from __future__ import annotations

import argparse
import itertools
import re
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import adjusted_rand_score

from cutslib import data, metrics, protocol
from cutslib.segment import file_name, load_segmentation, segment_latents

DICE = {"persistent": "persistent", "persistent2023": "persistent2023", "kmeans": "kmeans"}


def image_scores(seg, truth) -> dict[str, float]:
    """Dice under the label hint of each single map, and the oracle over the salient levels."""
    out = {f"dice_{name}": metrics.dice(protocol.label_hint(seg[key], truth), truth) for name, key in DICE.items()}
    levels = seg["levels"] if len(seg["levels"]) else seg["persistent"][None]
    out["dice_oracle"] = max(metrics.dice(protocol.label_hint(level, truth), truth) for level in levels)
    out["n_levels"] = len(seg["levels"])
    return out


def matched_level_ari(a, b) -> float:
    """Median over a's salient levels of the ARI with b's level of the nearest cluster count."""
    if not len(a["levels"]) or not len(b["levels"]):
        return float("nan")
    counts_b = np.array([len(np.unique(level)) for level in b["levels"]])
    aris = []
    for level in a["levels"]:
        match = b["levels"][int(np.argmin(np.abs(counts_b - len(np.unique(level)))))]
        aris.append(adjusted_rand_score(level.ravel(), match.ravel()))
    return float(np.median(aris))


def pair_scores(a, b) -> dict[str, float]:
    return {"ari_levels": matched_level_ari(a, b),
            "ari_kmeans": adjusted_rand_score(a["kmeans"].ravel(), b["kmeans"].ravel())}


def runs_in(root: Path) -> dict[tuple[str, int], Path]:
    found = {}
    for folder in sorted(root.iterdir()):
        match = re.fullmatch(r"(exact|fast)-seed(\d+)", folder.name)
        if match and folder.is_dir():
            found[(match[1], int(match[2]))] = folder
    return found


def validate(dataset, root: Path):
    runs = runs_in(root)
    ids = [i for i in dataset.ids if all((f / file_name(i)).exists() for f in runs.values())]
    if not ids:
        raise SystemExit(f"no image is segmented in every run of {root} ({sorted(runs)})")
    rows, pairs = [], []
    exact_seeds = sorted(s for m, s in runs if m == "exact")
    for image_id in ids:
        truth = dataset.masks[dataset.ids.index(image_id)]
        segs = {run: load_segmentation(folder, image_id) for run, folder in runs.items()}
        for (mode, seed), seg in segs.items():
            rows.append({"image_id": image_id, "mode": mode, "seed": seed, **image_scores(seg, truth)})
        for s, t in itertools.combinations(exact_seeds, 2):
            pairs.append({"image_id": image_id, "pair": f"exact{s}-exact{t}", "kind": "tolerance",
                          **pair_scores(segs[("exact", s)], segs[("exact", t)])})
        for mode, seed in segs:
            if mode == "fast" and ("exact", seed) in segs:
                pairs.append({"image_id": image_id, "pair": f"fast{seed}-exact{seed}", "kind": "agreement",
                              **pair_scores(segs[("fast", seed)], segs[("exact", seed)])})
    return pd.DataFrame(rows), pd.DataFrame(pairs), len(ids)


def report(scores: pd.DataFrame, pairs: pd.DataFrame, n_images: int) -> str:
    lines = [f"{n_images} images; runs: {sorted(set(zip(scores['mode'], scores['seed'])))}", ""]
    dice_cols = [c for c in scores.columns if c.startswith("dice_")]
    means = scores.groupby(["mode", "seed"])[dice_cols].mean()
    lines += ["mean Dice per run (label hint; oracle = best salient level)", means.round(4).to_string(), ""]
    lines += ["pairs (medians over images)", pairs.groupby(["kind", "pair"])[["ari_levels", "ari_kmeans"]]
              .median().round(4).to_string(), ""]
    exact = means.loc["exact"] if "exact" in means.index.get_level_values(0) else None
    if exact is None or len(exact) < 2 or "agreement" not in set(pairs["kind"]):
        lines.append("verdict: needs the exact path with >= 2 seeds and the fast path with one of them")
        return "\n".join(lines)
    tolerance = pairs[pairs.kind == "tolerance"]
    agreement = pairs[pairs.kind == "agreement"]
    checks = []
    for col in ("ari_levels", "ari_kmeans"):
        tol, agr = tolerance[col].median(), agreement[col].median()
        low, high = median_gap_interval(agreement, tolerance, col)
        checks.append((f"median {col}: fast vs exact {agr:.4f} >= exact seed-to-seed {tol:.4f} (difference "
                       f"{agr - tol:+.4f}, 95% bootstrap interval over images {low:+.4f} to {high:+.4f})", agr >= tol))
    spread = exact.std(ddof=1)
    fast = means.loc["fast"]
    shared = [s for s in fast.index if s in exact.index]
    for col in dice_cols:
        diff = float(np.mean([fast.loc[s, col] - exact.loc[s, col] for s in shared]))
        paired = scores.pivot_table(index=["image_id", "seed"], columns="mode", values=col).dropna()
        error = 1.96 * (paired["fast"] - paired["exact"]).std(ddof=1) / np.sqrt(len(paired))
        checks.append((f"mean {col}: fast - exact {diff:+.4f} (± {error:.4f}, 95% over images), exact "
                       f"seed-to-seed std {spread[col]:.4f}", abs(diff) < spread[col]))
    lines.append("verdict")
    lines += [f"  {'PASS' if ok else 'FAIL'}  {text}" for text, ok in checks]
    lines.append(f"{sum(ok for _, ok in checks)} of {len(checks)} criteria pass")
    return "\n".join(lines)


def median_gap_interval(agreement, tolerance, col, n_boot=2000, seed=0) -> tuple[float, float]:
    """95% bootstrap interval (images resampled, pairs kept together) of median(agreement) - median(tolerance):
    how far the two medians could move by the choice of images alone."""
    a = agreement.groupby("image_id")[col].apply(list)
    t = tolerance.groupby("image_id")[col].apply(list).reindex(a.index)
    rng = np.random.default_rng(seed)
    gaps = []
    for _ in range(n_boot):
        pick = rng.integers(0, len(a), len(a))
        gaps.append(np.nanmedian(np.concatenate(a.iloc[pick].to_numpy()))
                    - np.nanmedian(np.concatenate(t.iloc[pick].to_numpy())))
    return float(np.percentile(gaps, 2.5)), float(np.percentile(gaps, 97.5))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="retina")
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--embeddings", type=Path)
    parser.add_argument("--run", nargs="*", default=[], metavar="MODE:SEED")
    parser.add_argument("--limit", type=int, help="with --run: segment the first N images only")
    parser.add_argument("--csv", type=Path)
    args = parser.parse_args(argv)
    dataset = data.load(args.dataset, progress=False)
    if args.run:
        from cutslib.embed import load_embeddings

        if args.embeddings is None:
            parser.error("--run needs --embeddings")
        emb = load_embeddings(args.embeddings)
        n = len(emb.ids) if args.limit is None else min(args.limit, len(emb.ids))
        for job in args.run:
            mode, seed = job.split(":")
            start = time.perf_counter()
            segment_latents(emb.latents[:n], emb.ids[:n], args.root / f"{mode}-seed{seed}", seed=int(seed),
                            exact=mode == "exact", desc=job)
            print(f"{job}: {time.perf_counter() - start:.0f} s for {n} images (0 where cached)", flush=True)
    scores, pairs, n = validate(dataset, args.root)
    if args.csv:
        scores.merge(pairs, on="image_id", how="left").to_csv(args.csv, index=False)
    print(report(scores, pairs, n))


if __name__ == "__main__":
    main()
