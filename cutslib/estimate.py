"""Rough time estimates, printed before long work (``cuts evaluate``, ``cuts segment``).

The constants are seconds measured on this project's CPU machine (2 cores, no GPU, other jobs running: README,
"Speed") for one 128x128 image or one training step; other sizes scale with the pixel count. Work already in
the cache counts as done. The figures are meant to tell minutes from hours, not to be exact: a GPU makes
Stage 1 and the UNet much faster, while Stage 2 and the baselines run on the CPU cores either way.

>>> seconds, parts = evaluate_seconds(data.load("retina"), seeds=(1, 2, 3), config="paper")
>>> print(describe(seconds, parts))
"""

from __future__ import annotations


from cutslib import baselines, cache, unet
from cutslib.data import n_first

#: Stage 1, per training image of an epoch (validation included pro rata); windowed: with the 2S windows of the
#: loss pixels, times (2S + bn_windows) / 2S with extra BatchNorm windows. Measured on retina, 2 cores, alone
#: (benchmarks/bench_stage1.py, 2026-12-05): an 80-image epoch took 12.4 s dense and 0.47 s with `fast`'s 32
#: windows per image, 0.155 and 0.003 s per image and 16 windows; rounded up for slower machines.
STEP_SECONDS = {"dense": 0.2, "windowed": 0.004}
#: Stage 2 of one image: condensation, persistent maps and k-means (exact path, fast path: the reference's landmarks
#: make it ~1.4x cheaper than exact, 66 against 43-50 s CPU in one process at load 4-6)
STAGE2_SECONDS = {True: 32.0, False: 23.0}
#: the 2023 Stage 2 (cutslib.catch) of one image, when its rows are asked for: 0.77x the exact path's time in the
#: same run (retina arxiv2023 seed 2021, beside a training: 36 s against 47 s per image)
CATCH_SECONDS = 25.0
#: one image of each baseline (the rest take well under a second)
BASELINE_SECONDS = {"dfc": 26.0}
UNET_EPOCH_SECONDS = 5.0  # one UNet epoch on ~40 training images
PIXELS = 128 * 128


def _done(folder, ids) -> int:
    return sum((folder / name).exists() for name in ids) if folder.exists() else 0


def stage1_seconds(dataset, seed: int, config) -> float:
    """Stage 1 still to run for (dataset, seed, config): remaining epochs x steps x seconds per step (an
    upper bound for early-stopped profiles)."""
    import pandas as pd

    from cutslib.train import finished, resolve_config, run_settings, split_indices

    cfg = resolve_config(config)
    folder = cache.run_path("train", dataset.name, seed, run_settings(dataset, cfg))
    log = pd.read_csv(folder / "log.csv").to_dict("records") if (folder / "log.csv").exists() else []
    if finished(log, cfg):
        return 0.0
    done = len(log)
    n_train = len(split_indices(len(dataset), seed, cfg.val_fraction)[0])
    images_per_epoch = max(n_train, cfg.min_samples_per_epoch)
    windows = (2 * cfg.n_anchors + cfg.bn_windows) / (2 * cfg.n_anchors)
    return max(0, cfg.epochs - done) * images_per_epoch * STEP_SECONDS[cfg.forward] * windows * _scale(dataset)


def stage2_seconds(dataset, seed: int, config, n: int, exact: bool | None = None, stage2: str = "multiscale") -> float:
    """Stage 2 still to run on the first ``n`` images (the path of ``segment.stage2_exact(exact)``, or the 2023
    Stage 2 with ``stage2="catch2023"``)."""
    from cutslib.embed import embed_settings
    from cutslib.segment import file_name, segment_settings, stage2_exact
    from cutslib.train import resolve_config

    cfg = resolve_config(config)
    exact = stage2_exact(exact)
    embeddings = cache.run_path("embed", dataset.name, seed, embed_settings(dataset, cfg)).name
    folder = cache.run_path("segment", dataset.name, seed, segment_settings(embeddings, seed, exact, stage2))
    todo = n - _done(folder, [file_name(i) for i in dataset.ids[:n]])
    return todo * (CATCH_SECONDS if stage2 == "catch2023" else STAGE2_SECONDS[exact]) * _scale(dataset)


def _scale(dataset) -> float:
    return dataset.images.shape[1] * dataset.images.shape[2] / PIXELS


def evaluate_seconds(dataset, seeds, config, methods, limit=None) -> tuple[float, list[tuple[str, float]]]:
    """(total seconds, [(what, seconds), ...]) still to run for ``evaluate_dataset`` with these arguments."""
    from cutslib.evaluate import CATCH_METHODS, CUTS_METHODS

    n = n_first(limit, len(dataset))
    parts = []
    methods = [baselines.ALIASES.get(m, m) for m in methods]
    for seed in seeds:
        if any(m in CUTS_METHODS + CATCH_METHODS for m in methods):
            parts.append((f"CUTS Stage 1, seed {seed}", stage1_seconds(dataset, seed, config)))
        if any(m in CUTS_METHODS for m in methods):
            parts.append((f"CUTS Stage 2, seed {seed}, {n} images", stage2_seconds(dataset, seed, config, n)))
        if any(m in CATCH_METHODS for m in methods):
            parts.append((f"CUTS 2023 Stage 2, seed {seed}, {n} images",
                          stage2_seconds(dataset, seed, config, n, stage2="catch2023")))
        for method in methods:
            if method in BASELINE_SECONDS:
                seed_used, settings = baselines.baseline_settings(dataset, method, seed)
                folder = cache.run_path(f"baseline-{method}", dataset.name, seed_used, settings)
                todo = len(dataset) - _done(folder, [f"{i}.npz" for i in dataset.ids])
                parts.append((f"{method}, seed {seed}", todo * BASELINE_SECONDS[method] * _scale(dataset)))
            elif method == "unet_supervised":
                cfg = unet.PROFILES.get(str(config), unet.PROFILES["quick"])
                folder = cache.run_path("unet", dataset.name, seed, unet.unet_settings(dataset, cfg))
                seconds = 0.0 if (folder / "best.pt").exists() else cfg.epochs * UNET_EPOCH_SECONDS * _scale(dataset)
                parts.append((f"UNet, seed {seed}", seconds * len(dataset) / 56))
    return float(sum(s for _, s in parts)), [p for p in parts if p[1] > 0]


def describe(seconds: float, parts, top: int = 3) -> str:
    """One line: the total and its largest parts."""
    if seconds < 60:
        return "estimate: under a minute (most of it is cached or quick)"
    biggest = sorted(parts, key=lambda p: -p[1])[:top]
    detail = "; ".join(f"{what} ~{_duration(s)}" for what, s in biggest)
    return (f"estimate: ~{_duration(seconds)} on a 2-core CPU ({detail}); cached work is skipped, and an "
            "interrupted run resumes with the same command")


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


