"""Stage-2 benchmark: our condensation against the reference (Multiscale PHATE), in the same run.

On the embeddings of one retina image at 128x128 (16,384 points):

(a) ``cutslib.condensation.condense`` end to end vs ``Multiscale_PHATE(knn=100, random_state=0).fit``;
(b) ``condense_points`` vs the reference's condensation, on the same points (our diffusion potential).

Then a 512x512 image (262,144 points, the retina image upscaled) through ``condense``.
Each measurement runs in its own subprocess, which reports its wall time and peak RSS (ru_maxrss).
The encoder has fixed seeded random weights unless ``--checkpoint PATH`` is given (printed either way).

    python benchmarks/bench_stage2.py [--checkpoint PATH] [--skip-reference] [--skip-512]

Targets (2-core machine): (a) >= 20x faster, <= 2 GB peak; (b) >= 30x faster with identical labels;
512x512 in <= 120 s and < 8 GB. The reference needs minutes and ~10 GB: this script runs it once.
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
    if part.startswith("ours"):
        from cutslib import condensation as C
    if part.startswith("ref"):
        from multiscale_phate import Multiscale_PHATE
        from multiscale_phate import condense as ref_condense
        from multiscale_phate import embed as ref_embed
    out: dict = {}
    start = time.perf_counter()
    if part == "ours_e2e":
        cond = C.condense(np.load(work / "latents128.npy"), knn=100, seed=0)
        out["seconds"] = time.perf_counter() - start
        save_levels(work / "ours_e2e.npz", [cond.labels(s) for s in range(cond.n_steps)], cond.levels)
    elif part == "ref_e2e":
        op = Multiscale_PHATE(knn=100, random_state=0)
        op.fit(normalise(np.load(work / "latents128.npy")))
        out["seconds"] = time.perf_counter() - start
        levels = [lv for lv in op.levels if lv != 0]
        save_levels(work / "ref_e2e.npz", op.NxTs, levels)
    elif part == "ours_potential":  # the potential alone; its points feed (b)
        points = C.diffusion_potential(normalise(np.load(work / "latents128.npy")), knn=100, seed=0)
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
    elif part == "ours_512":
        cond = C.condense(np.load(work / "latents512.npy"), knn=100, seed=0)
        out["seconds"] = time.perf_counter() - start
        out["steps"], out["levels"] = cond.n_steps, [int(lv) for lv in cond.levels]
        out["partitions"] = int(cond.n_clusters[0])
        out["clusters_at_levels"] = [int(len(np.unique(cond.labels(lv)))) for lv in cond.levels]
    else:
        raise ValueError(f"unknown part {part}")
    usage = resource.getrusage(resource.RUSAGE_SELF)
    out["peak_rss_gb"] = usage.ru_maxrss / 2**20
    out["cpu_seconds"] = usage.ru_utime + usage.ru_stime  # whole process, imports included
    return out


def normalise(x):
    x = x.reshape(-1, x.shape[-1]).astype(np.float64)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def save_levels(path, labels_per_step, levels):
    np.savez(path, labels=np.asarray(labels_per_step, dtype=np.int32), levels=np.asarray(levels, dtype=np.int64))


# ---------------------------------------------------------------------------------------------- driver
def embeddings(checkpoint, work: Path) -> str:
    """Write latents128.npy and latents512.npy (one retina image); return a description of the encoder."""
    import torch
    from skimage.transform import resize

    from cutslib.data import load
    from cutslib.model import CUTSNet

    image = load("retina", progress=False).images[0]
    big = resize(image, (512, 512, image.shape[2]), order=1).astype(np.float32)
    if checkpoint:
        from cutslib.embed import embed_images

        lat128 = embed_images(checkpoint, image)[0][0]
        lat512 = embed_images(checkpoint, big)[0][0]
        what = f"trained checkpoint {checkpoint}"
    else:
        torch.manual_seed(0)
        net = CUTSNet(image.shape[2]).eval()
        with torch.no_grad():
            lat128, lat512 = (net(torch.from_numpy(np.ascontiguousarray(im)).permute(2, 0, 1)[None])[0]
                              .permute(1, 2, 0).reshape(-1, 128).numpy() for im in (image, big))
        what = "encoder with fixed random weights (torch seed 0): no trained checkpoint given"
    np.save(work / "latents128.npy", lat128.reshape(-1, 128))
    np.save(work / "latents512.npy", lat512.reshape(-1, 128))
    return what


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
    from sklearn.metrics import adjusted_rand_score

    a, b = np.load(work / f"{ours}.npz"), np.load(work / f"{ref}.npz")
    same = a["labels"].shape == b["labels"].shape and np.array_equal(a["labels"], b["labels"])
    aris = [round(adjusted_rand_score(a["labels"][lv], b["labels"][lv]), 6) for lv in a["levels"]
            if lv < len(b["labels"])]
    return same, a["levels"].tolist(), b["levels"].tolist(), aris


def compare(work: Path, ours: dict, ours_part: str, ref: dict, ref_part: str, note: str = "") -> None:
    """Print the speed-up of ours over the reference and how well their labels agree."""
    same, lo, lr, aris = agreement(work, ours_part, ref_part)
    print(f"  speed-up {ref['seconds'] / ours['seconds']:.1f}x wall, {ref['cpu_seconds'] / ours['cpu_seconds']:.1f}x "
          f"CPU; identical labels at every step: {same}")
    print(f"  salient levels ours {lo}\n  salient levels ref  {lr}{note}\n  ARI at our levels {aris}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", help="a trained stage-1 checkpoint (default: random-weight encoder)")
    parser.add_argument("--skip-reference", action="store_true", help="time only our code")
    parser.add_argument("--skip-512", action="store_true", help="skip the 512x512 image")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, Path(args.work))))
        return
    with tempfile.TemporaryDirectory(prefix="bench_stage2_") as tmp:
        work = Path(tmp)
        print("embeddings:", embeddings(args.checkpoint, work))
        print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; each line is one "
              "subprocess (wall time of the call; CPU time of the whole process, imports included)")
        print("(a) end to end, 128x128 retina image (16,384 points)")
        ours = run_child("ours_e2e", work)
        if not args.skip_reference:
            compare(work, ours, "ours_e2e", run_child("ref_e2e", work), "ref_e2e")
        print("(b) condensation only, on the same points (our diffusion potential, timed alone first)")
        run_child("ours_potential", work)
        ours = run_child("ours_cond", work)
        if not args.skip_reference:
            ref = run_child("ref_cond", work)
            compare(work, ours, "ours_cond", ref, "ref_cond",
                    f" (gradients < 1e-12 max as zero; raw rule: {ref['raw_levels']})")
        if not args.skip_512:
            print("512x512 image (262,144 points; upscaled retina image) through condense")
            big = run_child("ours_512", work)
            print(f"  {big['partitions']} partitions, {big['steps']} steps, levels {big['levels']}, "
                  f"clusters at levels {big['clusters_at_levels']}")


if __name__ == "__main__":
    main()
