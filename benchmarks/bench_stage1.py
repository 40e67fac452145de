"""Stage-1 speed: one paper-profile epoch on retina, dense and windowed, against the bare encoder floor.

Per repetition, interleaved so that machine load hits every figure alike:
* dense: one paper-profile training epoch on retina (seed 1 split: 40 train / 16 val images; 80 samples =
  5 steps of 16 with sampling, both losses, AdamW), plus the validation pass over the 16 validation images
  (reported separately and included in the epoch time);
* windowed: the same epoch with a windowed profile (``--windowed``, default ``fast``: the paper's settings,
  the windowed forward, BatchNorm statistics over the windows' receptive fields and 16 extra windows per image);
* floor: forward + backward of the dense encoder alone on a batch of 16 retina images at 128x128, repeated as
  many times as the epoch has steps (5);
the dense epoch in the fast layout (channels_last, what ``train`` uses) and, unless ``--no-plain``, in the
plain NCHW layout (the faithful reference path; same maths).

Prints every repetition, then medians, the 200-epoch time of the windowed profile, and, as its last line, the
ratio dense / windowed per epoch. Targets (2-core CPU): windowed >= 20x faster than dense per epoch, 200
windowed retina epochs <= 2 min; dense epoch <= 1.25x floor.

    CUTS_DATA_MIRROR=../shared/data .venv/bin/python benchmarks/bench_stage1.py [--reps 3] [--no-plain] [--device cuda]
        [--windowed fast]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from cutslib import data
from cutslib.train import PROFILES, Trainer, split_indices


def clock() -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process): CPU time is less sensitive to other jobs on the machine."""
    return time.perf_counter(), time.process_time()


def since(start: tuple[float, float]) -> tuple[float, float]:
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    now = clock()
    return now[0] - start[0], now[1] - start[1]


def time_floor(trainer: Trainer, n_steps: int) -> tuple[float, float]:
    """(wall, CPU) seconds for n_steps forward + backward passes of the encoder on one batch of images."""
    encoder = trainer.model.encoder
    encoder.train()
    images = trainer.train_images[: trainer.cfg.batch_size].contiguous(memory_format=trainer.layout)
    # A dense upstream gradient in the latents' own layout (``z.sum().backward()`` would pass a stride-0
    # expanded gradient, which sends some backward kernels down slow paths and inflates the floor).
    upstream = torch.ones_like(encoder(images).detach())
    start = clock()
    for _ in range(n_steps):
        encoder.zero_grad(set_to_none=True)
        encoder(images).backward(upstream)
    return since(start)


def time_epoch(trainer: Trainer) -> tuple[tuple[float, float], tuple[float, float]]:
    """((wall, CPU) seconds of training, (wall, CPU) seconds of validation) of one epoch."""
    start = clock()
    trainer.train_epoch()
    train_s = since(start)
    start = clock()
    trainer.validate()
    trainer.scheduler.step()
    return train_s, since(start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3, help="repetitions (default 3)")
    parser.add_argument("--no-plain", action="store_true", help="skip the plain NCHW layout")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--windowed", default="fast", choices=[k for k, c in PROFILES.items()
                                                                     if c.forward == "windowed"],
                        help="the windowed profile (default fast)")
    args = parser.parse_args()

    cfg = PROFILES["paper"]
    ds = data.load("retina", progress=False)
    train_idx, val_idx = split_indices(len(ds), 1, cfg.val_fraction)
    n_samples = max(len(train_idx), cfg.min_samples_per_epoch)
    n_steps = -(-n_samples // cfg.batch_size)
    runs = {"dense": (cfg, True), "windowed": (PROFILES[args.windowed], True)}
    if not args.no_plain:
        runs["dense-plain"] = (cfg, False)
    trainers = {name: Trainer(ds.images[train_idx], ds.images[val_idx], 1, c, device=args.device, channels_last=cl)
                for name, (c, cl) in runs.items()}
    print(f"retina: {len(train_idx)} train / {len(val_idx)} val images, {n_samples} samples = {n_steps} steps "
          f"of {cfg.batch_size}; torch {torch.__version__}, {torch.get_num_threads()} threads; windowed profile "
          f"{args.windowed}")
    for trainer in trainers.values():  # warm-up: one-off kernel and allocator set-up
        time_floor(trainer, 1)

    keys = ("train", "val", "epoch", "floor", "epoch_cpu", "floor_cpu")
    results = {name: {k: [] for k in keys} for name in trainers}
    for rep in range(args.reps):
        for name, trainer in trainers.items():
            (train_s, train_cpu), (val_s, val_cpu) = time_epoch(trainer)
            floor_s, floor_cpu = time_floor(trainer, n_steps)
            values = (train_s, val_s, train_s + val_s, floor_s, train_cpu + val_cpu, floor_cpu)
            for key, value in zip(keys, values):
                results[name][key].append(value)
            print(f"rep {rep + 1} {name:13s}: epoch {train_s + val_s:6.1f} s (train {train_s:5.1f} + val "
                  f"{val_s:4.1f}), floor {floor_s:6.1f} s, ratio {(train_s + val_s) / floor_s:.2f} | CPU time: "
                  f"epoch {train_cpu + val_cpu:6.1f} s, floor {floor_cpu:6.1f} s, ratio "
                  f"{(train_cpu + val_cpu) / floor_cpu:.2f}", flush=True)

    med = {name: {k: statistics.median(v) for k, v in r.items()} for name, r in results.items()}
    print(f"\nmedians over {args.reps} repetitions (targets: dense epoch/floor <= 1.25, windowed >= 20x dense)")
    for name, m in med.items():
        ratios = [e / f for e, f in zip(results[name]["epoch"], results[name]["floor"])]
        print(f"{name:13s}: epoch {m['epoch']:6.1f} s (train {m['train']:.1f} + val {m['val']:.1f}), "
              f"floor {m['floor']:6.1f} s, epoch/floor {m['epoch'] / m['floor']:.2f} (median per-rep ratio "
              f"{statistics.median(ratios):.2f}) | CPU time: epoch {m['epoch_cpu']:.1f} s, floor "
              f"{m['floor_cpu']:.1f} s, ratio {m['epoch_cpu'] / m['floor_cpu']:.2f}")
    if "dense-plain" in med:
        print(f"channels_last speed-up over the plain layout: {med['dense-plain']['epoch'] / med['dense']['epoch']:.2f}x "
              f"wall, {med['dense-plain']['epoch_cpu'] / med['dense']['epoch_cpu']:.2f}x CPU time per epoch")
    print(f"200 windowed epochs: {200 * med['windowed']['epoch'] / 60:.1f} min wall (at the median epoch)")
    print(f"windowed speed-up per epoch (dense / windowed): {med['dense']['epoch'] / med['windowed']['epoch']:.1f}x "
          f"wall, {med['dense']['epoch_cpu'] / med['windowed']['epoch_cpu']:.1f}x CPU time")


if __name__ == "__main__":
    main()
