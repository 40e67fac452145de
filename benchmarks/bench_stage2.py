"""Stage-2 benchmark: the fast and the exact path against the reference (Multiscale PHATE), in the same run.

On the embeddings of one retina image at 128x128 (16,384 points) and one brain_ventricles slice:

(a) ``condense`` end to end, fast and exact, vs ``Multiscale_PHATE(knn=100, random_state=0).fit`` on the
    same latents (retina), with the ARI at matched salient levels (nearest cluster count);
(b) ``segment_image`` (condensation, persistent maps and spectral k-means), fast and exact, on both images;
(c) ``condense_points`` vs the reference's condensation, on the same points (the exact potential);
(d) ``segment_latents`` on 8 retina images with jobs=1 and jobs=2, fast path (identical files?);
(b') ``segment_image`` (fast and exact) on the RGB image with 70% of its pixels one constant embedding;
(e) a 512x512 image (262,144 points, the retina image upscaled) through the fast ``condense``.
Each measurement runs in its own subprocess, which reports its wall time and peak RSS (ru_maxrss).
Embeddings: ``--embeddings DIR`` / ``--mri-embeddings DIR`` (cached ``cutslib.embed`` folders of trained
encoders), else ``--checkpoint PATH``, else an encoder with fixed seeded random weights (printed).

    python benchmarks/bench_stage2.py [--embeddings DIR] [--mri-embeddings DIR] [--skip-reference]
                                      [--skip-exact] [--skip-512] [--images 8]

Targets (2-core machine): (a) fast >= 20x faster than the reference, <= 2 GB peak; (b) fast <= 4 s per RGB
image, <= 6 s per MRI slice; (c) >= 30x faster with identical labels; (e) <= 20 s. The reference needs
minutes and ~8 GB: this script runs it once.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve()


# ------------------------------------------------------------------------------------------ children
def child(part: str, work: Path) -> dict:
    """Run one measurement in this (fresh) process; returns its figures (and saves its labels)."""
    if part.startswith(("ours", "fast", "exact", "seg", "jobs", "constant")):
        from cutslib import condensation as C
        from cutslib import segment
    if part.startswith("ref"):
        from multiscale_phate import Multiscale_PHATE
        from multiscale_phate import condense as ref_condense
        from multiscale_phate import embed as ref_embed
    out: dict = {}
    start = time.perf_counter()
    if part in ("fast_e2e", "exact_e2e"):
        cond = C.condense(np.load(work / "latents128.npy"), knn=100, seed=0, exact=part == "exact_e2e")
        out["seconds"] = time.perf_counter() - start
        save_levels(work / f"{part}.npz", [cond.labels(s) for s in range(cond.n_steps)], cond.levels)
    elif part.startswith("seg_"):  # seg_{fast,exact}_{rgb,mri}
        _, mode, image = part.split("_")
        seg = segment.segment_image(np.load(work / f"image_{image}.npy"), seed=0, exact=mode == "exact")
        out["seconds"] = time.perf_counter() - start
        np.savez(work / f"{part}.npz", **seg)
    elif part.startswith("jobs"):  # jobs1, jobs2: segment_latents on the 8 images
        latents = np.load(work / "dataset.npy", mmap_mode="r")
        segment.segment_latents(latents, [str(i) for i in range(len(latents))], work / part, seed=0,
                                progress=False, jobs=int(part[4:]), exact=False)
        out["seconds"] = time.perf_counter() - start
    elif part == "ref_e2e":
        op = Multiscale_PHATE(knn=100, random_state=0)
        op.fit(normalise(np.load(work / "latents128.npy")))
        out["seconds"] = time.perf_counter() - start
        levels = [lv for lv in op.levels if lv != 0]
        save_levels(work / "ref_e2e.npz", op.NxTs, levels)
    elif part == "ours_potential":  # the potential alone; its points feed (b)
        points = C.diffusion_potential(normalise(np.load(work / "latents128.npy")), knn=100, seed=0, exact=True)
        out["seconds"] = time.perf_counter() - start
        np.save(work / "points.npy", points)
    elif part == "ours_cond":
        cond = C.condense_points(np.load(work / "points.npy"))
        out["seconds"] = time.perf_counter() - start
        save_levels(work / "ours_cond.npz", [cond.labels(s) for s in range(cond.n_steps)], cond.levels)
    elif part == "ref_cond":
        points = np.load(work / "points.npy")
        eps, threshold = ref_condense.compute_condensation_param(points, granularity=0.1)
        nxts, xs, _, merges, _ = ref_condense.condense(points, np.arange(len(points)), 1.025, eps, threshold, 1,
                                                       random_state=0)
        gradient = ref_embed.compute_gradient(xs, merges)
        out["seconds"] = time.perf_counter() - start
        from cutslib.condensation import salient_levels

        out["raw_levels"] = [int(lv) for lv in ref_embed.get_levels(gradient) if lv != 0]
        save_levels(work / "ref_cond.npz", nxts, salient_levels(gradient))
    elif part in ("constant_fast", "constant_exact"):  # the RGB image with 70% of its pixels one embedding row
        latents = np.load(work / "image_rgb.npy").copy()
        flat = latents.reshape(-1, latents.shape[-1])
        flat[: int(0.7 * len(flat))] = flat[0]
        segment.segment_image(latents, seed=0, exact=part == "constant_exact")
        out["seconds"] = time.perf_counter() - start
    elif part == "fast_512":
        cond = C.condense(np.load(work / "latents512.npy"), knn=100, seed=0, exact=False)
        out["seconds"] = time.perf_counter() - start
        out["steps"], out["levels"] = cond.n_steps, [int(lv) for lv in cond.levels]
        out["partitions"] = int(cond.n_clusters[0])
        out["clusters_at_levels"] = [int(len(np.unique(cond.labels(lv)))) for lv in cond.levels]
    else:
        raise ValueError(f"unknown part {part}")
    usage, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    out["peak_rss_gb"] = max(usage.ru_maxrss, children.ru_maxrss) / 2**20  # (jobs: the largest worker)
    out["cpu_seconds"] = sum(u.ru_utime + u.ru_stime for u in (usage, children))  # imports included
    return out


def normalise(x):
    x = x.reshape(-1, x.shape[-1]).astype(np.float64)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def save_levels(path, labels_per_step, levels):
    np.savez(path, labels=np.asarray(labels_per_step, dtype=np.int32), levels=np.asarray(levels, dtype=np.int64))


# ---------------------------------------------------------------------------------------------- driver
def embeddings(args, work: Path) -> str:
    """Write the latents the children read; return a description of the encoders."""
    import torch
    from skimage.transform import resize

    from cutslib.data import load
    from cutslib.model import CUTSNet

    retina = load("retina", progress=False).images
    big = resize(retina[0], (512, 512, retina.shape[3]), order=1).astype(np.float32)

    def random_encoder(images):
        torch.manual_seed(0)
        net = CUTSNet(images.shape[-1]).eval()
        with torch.no_grad():
            return np.stack([net(torch.from_numpy(np.ascontiguousarray(im)).permute(2, 0, 1)[None])[0]
                             .permute(1, 2, 0).numpy() for im in images])

    n = args.images
    if args.embeddings:
        from cutslib.embed import embed_images, load_embeddings

        found = load_embeddings(args.embeddings)
        dataset = np.asarray(found.latents[:n])
        ckpt = sorted(Path(args.embeddings).parent.glob("train-*/best.pt"))
        lat512 = embed_images(ckpt[0], big)[0][0] if ckpt and not args.skip_512 else random_encoder(big[None])[0]
        what = f"retina: trained embeddings {args.embeddings}"
    elif args.checkpoint:
        from cutslib.embed import embed_images

        dataset = embed_images(args.checkpoint, retina[:n])[0]
        lat512 = embed_images(args.checkpoint, big)[0][0]
        what = f"retina: trained checkpoint {args.checkpoint}"
    else:
        dataset, lat512 = random_encoder(retina[:n]), random_encoder(big[None])[0]
        what = "retina: encoder with fixed random weights (torch seed 0)"
    if args.mri_embeddings:
        from cutslib.embed import load_embeddings

        mri = np.asarray(load_embeddings(args.mri_embeddings).latents[args.mri_index])
        what += f"; MRI: trained embeddings {args.mri_embeddings}, slice {args.mri_index}"
    else:
        mri = random_encoder(load("brain_ventricles", progress=False).images[args.mri_index:args.mri_index + 1])[0]
        what += f"; MRI: brain_ventricles slice {args.mri_index}, random-weight encoder"
    np.save(work / "latents128.npy", dataset[0].reshape(-1, dataset.shape[-1]))
    np.save(work / "image_rgb.npy", dataset[0])
    np.save(work / "image_mri.npy", mri)
    np.save(work / "dataset.npy", dataset)
    np.save(work / "latents512.npy", lat512.reshape(-1, lat512.shape[-1]))
    distinct = len(np.unique(mri.reshape(-1, mri.shape[-1]), axis=0))
    return what + f" (MRI slice: {distinct} distinct of {mri.shape[0] * mri.shape[1]} rows)"


def run_child(part: str, work: Path) -> dict:
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    result = subprocess.run([sys.executable, str(HERE), "--child", part, "--work", str(work)], env=env,
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{part} failed:\n{result.stderr[-3000:]}")
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    print(f"  {part:10s} {figures['seconds']:8.1f} s wall  {figures['cpu_seconds']:8.1f} s CPU  "
          f"peak RSS {figures['peak_rss_gb']:5.2f} GB", flush=True)
    return figures


def agreement(work: Path, ours: str, ref: str) -> tuple[bool, list, list, list]:
    """Identical labels at every step?, both salient levels, and the ARI at each of our levels against the
    reference's level with the nearest cluster count."""
    a, b = np.load(work / f"{ours}.npz"), np.load(work / f"{ref}.npz")
    same = a["labels"].shape == b["labels"].shape and np.array_equal(a["labels"], b["labels"])
    aris = matched_aris([a["labels"][lv] for lv in a["levels"]], [b["labels"][lv] for lv in b["levels"]])
    return same, a["levels"].tolist(), b["levels"].tolist(), aris


def matched_aris(levels, ref_levels) -> list:
    """ARI of each label map against the reference map with the nearest number of clusters."""
    from sklearn.metrics import adjusted_rand_score

    counts = np.array([len(np.unique(lv)) for lv in ref_levels])
    if not len(counts):
        return []
    return [round(adjusted_rand_score(np.ravel(lv), np.ravel(ref_levels[np.argmin(np.abs(counts - len(np.unique(lv))))])), 3)
            for lv in levels]


def compare(work: Path, ours: dict, ours_part: str, ref: dict, ref_part: str, note: str = "") -> None:
    """Print the speed-up of ours over the reference and how well their labels agree."""
    same, lo, lr, aris = agreement(work, ours_part, ref_part)
    print(f"  speed-up {ref['seconds'] / ours['seconds']:.1f}x wall, {ref['cpu_seconds'] / ours['cpu_seconds']:.1f}x "
          f"CPU; identical labels at every step: {same}")
    print(f"  salient levels ours {lo}\n  salient levels ref  {lr}{note}\n  ARI at matched levels {aris} "
          f"(median {np.median(aris) if aris else float('nan'):.3f})")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--embeddings", help="a cached cutslib.embed folder of retina (trained encoder)")
    parser.add_argument("--mri-embeddings", help="a cached cutslib.embed folder of brain_ventricles")
    parser.add_argument("--mri-index", type=int, default=50, help="the MRI slice (default 50)")
    parser.add_argument("--checkpoint", help="a trained retina checkpoint (without --embeddings)")
    parser.add_argument("--images", type=int, default=8, help="images for the jobs=1 / jobs=2 runs (default 8)")
    parser.add_argument("--skip-reference", action="store_true", help="do not run Multiscale PHATE")
    parser.add_argument("--skip-exact", action="store_true", help="do not run the exact path")
    parser.add_argument("--skip-512", action="store_true", help="skip the 512x512 image")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, Path(args.work))))
        return
    with tempfile.TemporaryDirectory(prefix="bench_stage2_") as tmp:
        work = Path(tmp)
        print("embeddings:", embeddings(args, work))
        print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; each line is one "
              "subprocess (wall time of the call; CPU time of the whole process, imports included)")
        print("(a) condense end to end, 128x128 retina image (16,384 points)")
        fast = run_child("fast_e2e", work)
        if not args.skip_exact:
            exact = run_child("exact_e2e", work)
            print(f"  fast vs exact: {exact['seconds'] / fast['seconds']:.1f}x; ARI at matched levels "
                  f"{agreement(work, 'fast_e2e', 'exact_e2e')[3]}")
        if not args.skip_reference:
            ref = run_child("ref_e2e", work)
            compare(work, fast, "fast_e2e", ref, "ref_e2e")
            if not args.skip_exact:
                compare(work, exact, "exact_e2e", ref, "ref_e2e")
        print("(b) segment_image (condensation, persistent maps, spectral k-means)")
        for image in ("rgb", "mri"):
            fast = run_child(f"seg_fast_{image}", work)
            fast_rgb = fast if image == "rgb" else fast_rgb
            if not args.skip_exact:
                exact = run_child(f"seg_exact_{image}", work)
                a, b = np.load(work / f"seg_fast_{image}.npz"), np.load(work / f"seg_exact_{image}.npz")
                aris = matched_aris(a["levels"], b["levels"])
                km = matched_aris([a["kmeans"]], [b["kmeans"]])
                print(f"  {image}: fast {exact['seconds'] / fast['seconds']:.1f}x faster than exact; ARI at matched "
                      f"levels median {np.median(aris) if aris else float('nan'):.3f} {aris}; k-means ARI {km}")
        for mode in ("fast",) if args.skip_exact else ("fast", "exact"):
            constant = run_child(f"constant_{mode}", work)
            ratio = constant["seconds"] / fast_rgb["seconds"]
            print(f"  70% one constant value (as an MRI background), {mode}: {ratio:.2f}x the fast RGB image's time "
                  f"(target <= 2x), peak {constant['peak_rss_gb']:.2f} GB (target <= 2 GB)")
        if not args.skip_exact and not args.skip_reference:
            print("(c) condensation only, on the same points (the exact potential, timed alone first)")
            run_child("ours_potential", work)
            ours = run_child("ours_cond", work)
            ref = run_child("ref_cond", work)
            compare(work, ours, "ours_cond", ref, "ref_cond",
                    f" (gradients < 1e-12 max as zero; raw rule: {ref['raw_levels']})")
        print(f"(d) segment_latents on {args.images} retina images (fast path)")
        one, two = run_child("jobs1", work), run_child("jobs2", work)
        files = sorted((work / "jobs1").glob("*.npz"))
        same = sum(all(np.array_equal(np.load(f)[k], np.load(work / "jobs2" / f.name)[k])
                       for k in np.load(f).files if k != "gradient") for f in files)
        print(f"  jobs=2 vs jobs=1: {one['seconds'] / two['seconds']:.2f}x; identical labels in {same} of "
              f"{len(files)} images (jobs=1 runs {os.cpu_count()} BLAS threads per image, jobs=2 one each)")
        if not args.skip_512:
            print("(e) 512x512 image (262,144 points; upscaled retina image) through the fast condense")
            big = run_child("fast_512", work)
            print(f"  {big['partitions']} partitions, {big['steps']} steps, levels {big['levels']}, "
                  f"clusters at levels {big['clusters_at_levels']}")
        print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
