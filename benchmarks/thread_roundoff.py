"""How much the exact (reference) path's CUTS + k-means moves with the BLAS thread count alone, on MRI slices.

An MRI slice's black background is thousands of identical embedding rows. The reference's kernel between two
of those copies is exp(-(d / bw)^40) with d and bw both the round-off of |x|^2 - 2 x.x + |x|^2 (one value for
every pair): exp(-1) when that round-off is positive, 1 when it is not. Which one depends on the arithmetic
of the PCA before it, so on the machine. This script prints, for the first ``--limit`` slices and Stage-2 seeds:

- the reference's kernel value between background copies with the PCA at 1 and at 2 threads;
- the exact path's CUTS + k-means at ``--threads`` threads against the same seeds in ``ROOT/exact-seed{k}``
  (made at 1 thread per image by ``validate_stage2.py --run exact:k``): identical maps, median ARI, mean Dice
  difference under the label hint, and the same for ``ROOT/fast-seed{k}`` beside it.

    python benchmarks/thread_roundoff.py --root DIR --embeddings DIR [--limit 30 --seeds 0 1 2 --threads 2]

Label maps are cached in ``ROOT/kmeans-threads{N}/`` (resumable); 55-70 s per slice and seed at 2 threads beside
a 2-job Stage 2 (not timed alone).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.decomposition import PCA
from sklearn.metrics import adjusted_rand_score
from threadpoolctl import threadpool_limits

from cutslib import clustering, data, metrics, protocol
from cutslib.potential import (KNN, check_points, kernel_block, kernel_rows, limit_threads, squared_norms,
                               unique_rows)
from cutslib.segment import load_segmentation


def copy_kernel(flat, seed, threads) -> float:
    """The reference's kernel value between two copies of the most repeated row, with the k-means path's PCA
    at ``threads`` threads and the kernel's blocks as :func:`alpha_decay_kernel` makes them."""
    _, inverse, counts = unique_rows(flat)
    first, second = np.flatnonzero(inverse == np.argmax(counts))[:2]
    with limit_threads(threads):
        x = check_points(flat)  # as spectral_kmeans: float64, fit then transform
        x = PCA(clustering.N_PCA, svd_solver="randomized", random_state=seed).fit(x).transform(x)
        block = kernel_block(len(x))
    with threadpool_limits(1, user_api="blas"):
        rows, cols, values = kernel_rows(x, squared_norms(x), first // block * block, knn=KNN, block=block)
    return float(values[(rows == first) & (cols == second)].sum())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, required=True, help="validate_stage2.py's folder (exact-seed{k}/ ...)")
    parser.add_argument("--embeddings", type=Path, required=True, help="the cached embed folder of those slices")
    parser.add_argument("--dataset", default="brain_ventricles")
    parser.add_argument("--limit", type=int, default=30)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    ids = json.loads((args.embeddings / "ids.json").read_text())
    latents = np.load(args.embeddings / "latents.npy", mmap_mode="r")
    ds = data.load(args.dataset, progress=False)
    images = sorted(p.stem for p in (args.root / f"exact-seed{args.seeds[0]}").glob("*.npz"))[:args.limit]
    cache = args.root / f"kmeans-threads{args.threads}"
    cache.mkdir(exist_ok=True)
    rows, start = [], time.time()
    for seed in args.seeds:
        for image in images:
            flat = np.asarray(latents[ids.index(image)]).reshape(-1, latents.shape[-1])
            path = cache / f"{image}-seed{seed}.npy"
            if not path.exists():
                with limit_threads(args.threads):
                    np.save(path, clustering.spectral_kmeans(flat, 10, seed, exact=True))
                print(f"seed {seed} {image}: {time.time() - start:.0f} s", flush=True)
            truth = ds.masks[ds.ids.index(image)]
            exact = load_segmentation(args.root / f"exact-seed{seed}", image)["kmeans"]
            fast = load_segmentation(args.root / f"fast-seed{seed}", image)["kmeans"]
            other = np.load(path).reshape(truth.shape)

            def dice(labels):
                return metrics.dice(protocol.label_hint(labels, truth), truth)

            rows.append(dict(image=image, seed=seed, copy_1thread=copy_kernel(flat, seed, 1),
                             copy_nthreads=copy_kernel(flat, seed, args.threads), dice_exact=dice(exact),
                             dice_threads=dice(other), dice_fast=dice(fast), same=bool((other == exact).all()),
                             ari_threads=adjusted_rand_score(exact.ravel(), other.ravel()),
                             ari_fast=adjusted_rand_score(exact.ravel(), fast.ravel())))
    df = pd.DataFrame(rows)
    df.to_csv(cache / "scores.csv", index=False)
    flips = (df.copy_1thread.round(3) != df.copy_nthreads.round(3)).sum()
    print(f"\n{len(images)} slices x seeds {args.seeds}; the reference's kernel between background copies:")
    print(f"  exp(-1) in {(df.copy_1thread < 0.5).sum()} of {len(df)} at 1 thread, "
          f"{(df.copy_nthreads < 0.5).sum()} at {args.threads}; it changes with the thread count in {flips}")
    print(f"CUTS + k-means against the exact path at 1 thread (same seeds; {cache}/scores.csv):")
    for name, col in ((f"exact, {args.threads} threads", "threads"), ("fast", "fast")):
        diff = df[f"dice_{col}"] - df.dice_exact
        per_seed = ", ".join(f"{v:+.4f}" for v in diff.groupby(df.seed).mean())
        print(f"  {name:18s} median ARI {df[f'ari_{col}'].median():.3f}   mean Dice difference {diff.mean():+.4f} "
              f"(per seed {per_seed})")
    print(f"  identical maps, exact at {args.threads} threads vs 1: {int(df.same.sum())} of {len(df)}")


if __name__ == "__main__":
    main()
