"""A folder of the user's own images to segmentations one can open: train if needed, embed, segment, draw.

>>> out = segment_folder("my_pngs/")                      # trains the encoder on the folder first (cached)
>>> out = segment_folder("my_pngs/", checkpoint="best.pt", out="results_here/", size=256)

Per image ``<id>`` the output folder holds ``<id>.npz`` (the Stage-2 arrays of :mod:`cutslib.segment`, at the
model's resolution and cropped to the image, plus its reconstruction ``recon``) and the pictures of
:mod:`cutslib.outputs`, at the image's original size.

The folder is keyed by content: ``settings.json`` records the SHA-256 of the images (and of the checkpoint, or
the settings of the training run), the size, the seed and the versions. Without ``out`` the folder is a cached
results folder named by those settings; an ``out`` made with other settings, or holding anything else, is
refused. An unreadable result in it is recomputed (and said so). Every input is checked before anything is
created.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np

from cutslib import cache, outputs
from cutslib.data import SIZE, load_folder, n_first
from cutslib.segment import KEYS, VERSION, file_name, segment_image, stage2_exact

log = logging.getLogger(__name__)
#: Stage-1 profile used when no checkpoint is given.
FOLDER_PROFILE = "quick"
FOLDER_VERSION = 1  # bump when the files written here change
SETTINGS = "settings.json"


def file_sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def check_checkpoint(path, channels: int) -> None:
    """Raise one clear error if ``path`` is not a CUTS encoder checkpoint for ``channels``-channel images."""
    import torch

    from cutslib.model import CUTSNet

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        why = ("it holds Python objects besides tensors, so it is not a CUTS checkpoint"
               if "Unsupported global" in str(exc) else "torch cannot read it (corrupt, truncated or not "
               "a torch file)")
        raise ValueError(f"checkpoint {path}: {why}") from None
    if not isinstance(state, dict) or not {"model", "in_channels"} <= set(state):
        raise ValueError(f"checkpoint {path} is a torch file but not a CUTS encoder checkpoint (no 'model' and "
                         "'in_channels'); `cuts train` writes one")
    try:
        CUTSNet(int(state["in_channels"])).load_state_dict(state["model"])
    except Exception:
        raise ValueError(f"checkpoint {path}: its weights do not fit the CUTS encoder") from None
    if int(state["in_channels"]) != channels:
        raise ValueError(f"checkpoint {path} was trained on {state['in_channels']}-channel images, but these "
                         f"images have {channels}")


def folder_settings(dataset, encoder: dict, seed: int, size: int) -> dict:
    """What keys an output folder: the images' content and geometry, the encoder, seed, size and versions."""
    from cutslib.condensation import KNN

    frames = {i: list(vars(f).values()) for i, f in dataset.frames.items()}
    return {"images_sha256": cache.images_digest(dataset), "frames": frames, "encoder": encoder, "seed": seed,
            "size": size, "knn": KNN, "segment_version": VERSION, "folder_version": FOLDER_VERSION,
            "stage2": "exact" if stage2_exact() else "fast"}


# Rough CPU costs measured on the project's 2-core machine (README, "Speed"): one Stage-1 epoch of 80 images at
# 128 x 128 (paper settings) 11 s. Stage 2 is the whole of segment_image on its path (condensation, both
# persistent maps and the spectral k-means), as cutslib.estimate counts it for data-set runs, in proportion to
# the pixels: condense alone (46 s at 512 x 512) is a small part of it there; one 341 x 512 image took 21 min at
# load ~5, of which 3.5 min condensation and the rest the k-means (README, "Your own images").
EPOCH_SECONDS_128 = 11.0


def estimate_seconds(samples_per_epoch: int, epochs: int, n_segment: int, pixels: float,
                     size: int) -> tuple[float, float]:
    """(training, Stage 2) seconds on a 2-core CPU, roughly: training scales with the images drawn per epoch
    and their area, Stage 2 with the pixels of each image (pixels: mean per image)."""
    from cutslib.estimate import PIXELS, STAGE2_SECONDS

    train_s = epochs * EPOCH_SECONDS_128 * samples_per_epoch / 80 * (size / 128) ** 2
    return train_s, n_segment * STAGE2_SECONDS[stage2_exact()] * max(pixels, 1) / PIXELS


def _epochs_done(dataset, seed: int, cfg) -> int:
    """Epochs of this training run already in the cache (0 if none; all of them if it has finished)."""
    from cutslib.train import finished, run_settings

    path = cache.run_path("train", dataset.name, seed, run_settings(dataset, cfg)) / "log.csv"
    if not path.is_file():
        return 0
    import pandas as pd

    log = pd.read_csv(path).to_dict("records")
    return cfg.epochs if finished(log, cfg) else min(len(log), cfg.epochs)


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"


def check_out(out: Path, settings: dict) -> None:
    """Refuse an output folder that holds other results or files that are not ours."""
    if not out.exists():
        return
    if not out.is_dir():
        raise ValueError(f"--out {out} exists and is not a folder")
    recorded = out / SETTINGS
    if recorded.is_file():
        try:
            old = json.loads(recorded.read_text())
        except ValueError:
            old = None
        new = json.loads(json.dumps(settings, default=str))
        if old != new:
            differ = sorted(k for k in new if not isinstance(old, dict) or old.get(k) != new[k])
            raise ValueError(f"--out {out} holds results made with other settings (differ: "
                             f"{', '.join(differ) or 'format'}); choose another folder, or empty it to recompute")
    elif any(out.iterdir()):
        raise ValueError(f"--out {out} is not empty and was not written by `cuts segment` (no {SETTINGS}); "
                         "choose a new or empty folder")


def _stored(path: Path, rows: int, cols: int) -> dict | None:
    """The arrays of a finished image, or None (with a log line) if the file is unreadable or wrong."""
    if not path.exists():
        return None
    try:
        arrays = cache.load_npz(path)
        if any(k not in arrays for k in (*KEYS, "recon")) or arrays["persistent"].shape != (rows, cols):
            raise OSError("not a segmentation of this image")
        return arrays
    except OSError as exc:
        log.info("recomputing %s: %s", path.name, str(exc).split(" (")[0])
        return None


def segment_folder(images, checkpoint=None, out=None, seed: int = 1, size: int = SIZE,
                   profile: str | None = None, limit: int | None = None, progress: bool = True) -> Path:
    """Segment the first ``limit`` (all if None) images of folder ``images``; returns the output folder.

    ``checkpoint``: a trained encoder; without one, the encoder is trained on the whole folder first with
    ``profile`` (default :data:`FOLDER_PROFILE`), cached and resumable as ``cuts train`` is. ``size``: the model's
    side (see :func:`cutslib.data.load_folder`).
    """
    from tqdm.auto import tqdm

    from cutslib.embed import embed_images
    from cutslib.train import resolve_config, run_settings, train

    if checkpoint is not None and not Path(checkpoint).is_file():
        raise FileNotFoundError(f"checkpoint {checkpoint} does not exist")
    dataset = load_folder(images, size=size)
    n = n_first(limit, len(dataset))
    if checkpoint is not None:
        if profile is not None:
            raise ValueError("--profile trains an encoder; with --checkpoint there is nothing to train")
        check_checkpoint(checkpoint, dataset.channels)
        encoder = {"checkpoint_sha256": file_sha256(checkpoint)}
    else:
        cfg = resolve_config(profile or FOLDER_PROFILE)
        encoder = {"train": cache.settings_hash(run_settings(dataset, cfg))}
    settings = folder_settings(dataset, encoder, seed, size)
    if out is not None:
        out = Path(out)
        check_out(out, settings)
    # Work already cached counts as done: finished epochs of the training run, images already in the folder.
    target = out if out is not None else cache.run_path("folder", dataset.name, seed, settings)
    todo = sum(not (target / file_name(i)).exists() for i in dataset.ids[:n])
    pixels = np.mean([f.rows * f.cols for f in dataset.frames.values()])
    epochs = 0 if checkpoint else cfg.epochs - _epochs_done(dataset, seed, cfg)
    samples = 0 if checkpoint else max(len(dataset), cfg.min_samples_per_epoch)
    train_s, stage2_s = estimate_seconds(samples, epochs, todo, pixels, size)
    if checkpoint is None:
        if epochs > 0:
            log.info("training the encoder on %d images of %s (profile %s, %d of %d epochs to run; roughly %s on "
                     "a 2-core CPU, less on a GPU); cached, rerun to resume", len(dataset), images,
                     profile or FOLDER_PROFILE, epochs, cfg.epochs, _minutes(train_s))
        else:
            log.info("using the encoder trained earlier on these images (profile %s, cached)",
                     profile or FOLDER_PROFILE)
        checkpoint = train(dataset, seed, cfg, progress=progress)
    if todo:
        log.info("segmenting %d images at %d x %d (roughly %s on a 2-core CPU)%s", todo, size, size,
                 _minutes(stage2_s), f"; {n - todo} already done" if todo < n else "")
    else:
        log.info("nothing to run: the %d images are already segmented in %s", n, target)
    if out is None:
        out = cache.run_dir("folder", dataset.name, seed, settings)
    else:
        out.mkdir(parents=True, exist_ok=True)
        if not (out / SETTINGS).exists():
            cache.write_text(out / SETTINGS, json.dumps(settings, indent=2, sort_keys=True, default=str))
    bar = tqdm(total=3 * n, desc="segment", unit="step", disable=not progress)
    with bar:
        for i in range(n):
            image_id = dataset.ids[i]
            frame, npz = dataset.frames[image_id], out / file_name(image_id)
            stem = npz.name[:-len(".npz")]
            bar.set_postfix(image=image_id)
            arrays = _stored(npz, frame.rows, frame.cols)
            image = frame.crop(dataset.images[i])
            if arrays is None:
                latents, recon = embed_images(checkpoint, dataset.images[i])
                bar.update(1)
                arrays = {**segment_image(frame.crop(latents[0]), seed=seed, exact=stage2_exact(),
                                             progress=progress), "recon": frame.crop(recon[0])}
                bar.update(1)
                outputs.write_outputs(out, stem, arrays, image, arrays["recon"], frame)
                cache.save_npz(npz, **arrays)  # last: its presence marks the image done
            else:
                bar.update(2)
                if not all((out / name).exists() for name in outputs.output_names(stem, arrays["levels"])):
                    outputs.write_outputs(out, stem, arrays, image, arrays["recon"], frame)
            bar.update(1)
    return out
