"""Per-pixel embeddings of a whole data set with a trained CUTS encoder (train and validation images alike:
the method is transductive).

``embed_dataset`` writes, under ``cache.run_dir("embed", ...)``, ``latents.npy`` (N, H, W, 128) float32,
``recon.npy`` (N, H, W, C) float32 (for every pixel, the centre of its decoded 5x5 patch) and ``ids.json``.
Latents are kept in float32 (470 MB for the 56 retina images): stage 2 builds k-nearest-neighbour graphs on
them, and float16 rounding (relative error ~5e-4) can reorder near-tied neighbours, so we do not trade
exactness for disk space. ``latents`` is returned memory-mapped (read-only).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from cutslib import cache
from cutslib.model import LATENT_DIM
from cutslib.train import check_images, load_model, resolve_config, run_settings, to_tensor, train

EMBED_BATCH = 8


@dataclass
class Embeddings:
    """The embeddings of a data set: ``latents`` (N, H, W, 128), ``recon`` (N, H, W, C), ``ids``, ``path``."""

    latents: np.ndarray
    recon: np.ndarray
    ids: list[str]
    path: Path

    def __len__(self) -> int:
        return len(self.ids)


def embed_images(checkpoint_path, images: np.ndarray, device: torch.device | str | None = None,
                 batch_size: int = EMBED_BATCH, out: tuple[np.ndarray, np.ndarray] | None = None,
                 progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Latents (N, H, W, 128) and reconstructions (N, H, W, C), float32, of images (N, H, W, C) in [-1, 1].

    A single (H, W, C) image is accepted too. ``out`` may give preallocated (latents, recon) arrays (for
    example memory maps) to fill instead of new ones.
    """
    model = load_model(checkpoint_path, device)
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[None]
    try:
        images = check_images(images, channels=model.in_channels)
    except ValueError as exc:
        raise ValueError(f"{exc} (checkpoint {checkpoint_path})") from None
    n, h, w, c = images.shape
    latents, recon = out if out is not None else (np.empty((n, h, w, LATENT_DIM), np.float32),
                                                  np.empty((n, h, w, c), np.float32))
    device = next(model.parameters()).device
    with torch.no_grad():
        for start in tqdm(range(0, n, batch_size), desc="embed", unit="batch", disable=not progress):
            x = to_tensor(images[start:start + batch_size], device)
            z = model(x)
            latents[start:start + len(x)] = z.permute(0, 2, 3, 1).cpu().numpy()
            recon[start:start + len(x)] = model.reconstruct(z).permute(0, 2, 3, 1).cpu().numpy()
    return latents, recon


def embed_dataset(dataset, seed: int, config="quick", progress: bool = True,
                  device: torch.device | str | None = None) -> Embeddings:
    """Embed every image of ``dataset`` with the encoder trained for (dataset, seed, config); cached.

    Trains first if needed (see ``cutslib.train.train``).
    """
    cfg = resolve_config(config)
    checkpoint = train(dataset, seed, cfg, progress=progress, device=device)
    folder = cache.run_dir("embed", dataset.name, seed, embed_settings(dataset, cfg))
    latents_path, recon_path, ids_path = folder / "latents.npy", folder / "recon.npy", folder / "ids.json"
    if not ids_path.exists():  # ids.json is written last: its presence marks a complete embedding
        n, h, w, c = dataset.images.shape
        with cache.atomic_path(latents_path) as tmp_latents, cache.atomic_path(recon_path) as tmp_recon:
            latents = np.lib.format.open_memmap(tmp_latents, mode="w+", dtype=np.float32, shape=(n, h, w, LATENT_DIM))
            recon = np.lib.format.open_memmap(tmp_recon, mode="w+", dtype=np.float32, shape=(n, h, w, c))
            embed_images(checkpoint, dataset.images, device=device, out=(latents, recon), progress=progress)
            latents.flush(), recon.flush()
            del latents, recon
        cache.write_text(ids_path, json.dumps(list(dataset.ids)))
    return load_embeddings(folder)


def embed_settings(dataset, cfg) -> dict:
    """The settings that key an embedding's cache folder."""
    return {"train": run_settings(dataset, cfg), "latents_dtype": "float32"}


def load_embeddings(folder) -> Embeddings:
    """Load a cached embedding folder (latents memory-mapped)."""
    folder = Path(folder)
    try:
        ids = json.loads((folder / "ids.json").read_text())
        latents = np.load(folder / "latents.npy", mmap_mode="r")
        recon = np.load(folder / "recon.npy")
    except FileNotFoundError:
        raise
    except Exception as exc:
        raise OSError(f"cached embeddings in {folder} are corrupt ({exc}); delete the folder and rerun") from exc
    if len(latents) != len(ids) or len(recon) != len(ids):
        raise OSError(f"cached embeddings in {folder} are inconsistent; delete the folder and rerun")
    return Embeddings(latents=latents, recon=recon, ids=ids, path=folder)
