"""Stage 2 for whole data sets: every image's embeddings -> coarse-to-fine segmentations, cached per image.

One ``<id>.npz`` per image holds:

- ``levels`` int32 (L, H, W): the label map of each salient level, fine to coarse (ids are the smallest
  pixel index of each cluster, row-major, so they are stable across levels);
- ``level_steps`` (L,): the condensation step of each level;
- ``persistent`` int32 (H, W): "CUTS + diffusion (persistent)", the 2024 rule (0 where no persistent structure);
- ``persistent2023`` int32 (H, W): the same from the 2023 persistent rule;
- ``kmeans`` int32 (H, W): "CUTS + k-means" (spectral k-means, 10 clusters);
- ``n_clusters`` (n_steps,) and ``gradient`` (n_steps - 1,) of the condensation.

``stage2="catch2023"`` is the 2023 Stage 2 instead (:mod:`cutslib.catch`, the CATCH-style condensation behind
``paper_table1.csv``'s diffusion rows), in a folder of its own; its files hold :data:`CATCH_KEYS` (its levels
are the plateau levels; no k-means, which was the same in 2023).

Files are written atomically, so an interrupted run resumes where it stopped. ``jobs=N`` (or the
environment variable ``CUTS_JOBS``) segments N images at a time in joblib worker processes, each with
cores / N threads, and gives the same files as a serial run with that many threads per image (BLAS and
LAPACK results depend on the thread count in the last bits, as the reference's do, and the landmark
k-means can turn those bits into other landmarks). A joblib backend set by the caller, such as
dask's (``with joblib.parallel_config("dask"): ...``), spreads the images over a cluster.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from cutslib import cache
from cutslib.clustering import spectral_kmeans
from cutslib.condensation import KNN, condense, persistent_structures
from cutslib.potential import cpu_threads, limit_threads

VERSION = 6  # bump when the outputs change, so old caches are not reused (6: the fast path's spectral landmarks)
#: The Stage-2 path of data-set runs when neither ``exact=`` nor ``$CUTS_STAGE2`` ("fast" or "exact") says.
DEFAULT_PATH = "fast"
LARGE = 128 * 128  # images with more pixels than this get a progress bar of their own
KEYS = ("levels", "level_steps", "persistent", "persistent2023", "kmeans", "n_clusters", "gradient")
CATCH_KEYS = ("levels", "level_steps", "persistent", "persistent2023", "n_clusters", "gradient")
CATCH_VERSION = 1  # bump when the 2023 Stage 2's outputs change
STAGE2 = ("multiscale", "catch2023")  # Multiscale PHATE (2024, the default) or the 2023 CATCH-style condensation


def segment_image(latents, seed: int = 0, exact: bool = False, progress: bool = False) -> dict:
    """Segment one image from its pixel embeddings (H, W, D); returns the arrays listed in the module doc.

    ``exact=True``: the reference's potentials bit for bit (slow; see :mod:`cutslib.potential`).
    ``progress``: a bar through the image's steps (and condensation's merges), for large images; its clock
    ticks every second, so a step that runs for minutes (a 512-pixel image's kernel or k-means) still shows
    that it is running and for how long."""
    latents = np.asarray(latents)
    if latents.ndim != 3:
        raise ValueError(f"latents must be (H, W, D), got shape {latents.shape}")
    h, w, d = latents.shape
    flat = latents.reshape(h * w, d)
    bar = tqdm(total=3, desc=f"{h}x{w} image: condensation", leave=False, disable=not progress,
               bar_format="{desc}: step {n_fmt}/{total_fmt} [{elapsed} elapsed]")
    with bar, ticking(bar):
        cond = condense(flat, knn=KNN, seed=seed, exact=exact, progress=progress)
        bar.update(), bar.set_description_str(f"{h}x{w} image: persistent maps")
        out = condensation_arrays(cond, (h, w))
        bar.update(), bar.set_description_str(f"{h}x{w} image: k-means")
        out["kmeans"] = spectral_kmeans(flat, n_clusters=10, seed=seed, exact=exact).reshape(h, w).astype(np.int32)
        bar.update()
    return out


def segment_image_2023(latents, seed: int = 0, progress: bool = False) -> dict:
    """The 2023 Stage 2 of one image (H, W, D) (:func:`cutslib.catch.catch_condense`); the arrays of
    :data:`CATCH_KEYS`."""
    from cutslib.catch import catch_condense

    latents = np.asarray(latents)
    if latents.ndim != 3:
        raise ValueError(f"latents must be (H, W, D), got shape {latents.shape}")
    h, w, d = latents.shape
    return condensation_arrays(catch_condense(latents.reshape(h * w, d), seed=seed, progress=progress), (h, w))


def condensation_arrays(cond, shape) -> dict:
    """A condensation's arrays in a segmentation file: its levels, both persistent maps, counts, gradient."""
    levels = [cond.labels(step).reshape(shape) for step in cond.levels]
    return {
        "levels": np.stack(levels).astype(np.int32) if levels else np.zeros((0, *shape), np.int32),
        "level_steps": np.asarray(cond.levels, dtype=np.int64),
        "persistent": persistent_structures(cond, shape).astype(np.int32),
        "persistent2023": persistent_structures(cond, shape, rule="2023").astype(np.int32),
        "n_clusters": np.asarray(cond.n_clusters, dtype=np.int64),
        "gradient": np.asarray(cond.gradient, dtype=np.float64),
    }


@contextlib.contextmanager
def ticking(bar, every: float = 1.0):
    """Redraw ``bar`` every ``every`` seconds in a background thread, so its elapsed time keeps moving."""
    if bar.disable:
        yield bar
        return
    stop = threading.Event()

    def tick():
        while not stop.wait(every):
            bar.refresh()

    thread = threading.Thread(target=tick, daemon=True)
    thread.start()
    try:
        yield bar
    finally:
        stop.set()
        thread.join()


def file_name(image_id: str) -> str:
    """The file of one image in a segmentation folder (ids may hold characters unsafe in file names)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", str(image_id)) + ".npz"


def check_jobs(jobs) -> int:
    """The number of parallel images: ``jobs``, else ``$CUTS_JOBS``, else 1; a ValueError if not >= 1."""
    if jobs is None:
        jobs = os.environ.get("CUTS_JOBS", "1")
    try:
        value = int(jobs)
    except (TypeError, ValueError):
        value = 0
    if value < 1 or str(value) != str(jobs).strip():
        raise ValueError(f"jobs (or CUTS_JOBS) must be a whole number >= 1, got {jobs!r}")
    return value


def _segment_to(path, latents, seed, threads, exact, progress=False, stage2="multiscale"):
    """Segment one image with at most ``threads`` threads and write its file (also in a worker)."""
    with limit_threads(threads):
        latents = np.asarray(latents)
        arrays = (segment_image_2023(latents, seed=seed, progress=progress) if stage2 == "catch2023"
                  else segment_image(latents, seed=seed, exact=exact, progress=progress))
        cache.save_npz(path, **arrays)


def check_stage2(stage2: str) -> str:
    """``stage2`` if it names a Stage 2 of :data:`STAGE2`, else a ValueError."""
    if stage2 not in STAGE2:
        raise ValueError(f"stage2 must be one of {STAGE2}, got {stage2!r}")
    return stage2


def segment_latents(latents, ids, folder, seed: int = 0, progress: bool = True, desc="segment",
                    jobs: int | None = None, exact: bool = False, stage2: str = "multiscale") -> Path:
    """Segment every image of ``latents`` (N, H, W, D) into ``folder``, skipping images already done;
    ``jobs`` images at a time (see the module doc); ``exact`` as for :func:`segment_image`; ``stage2`` one of
    :data:`STAGE2`."""
    stage2 = check_stage2(stage2)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if len(latents) != len(ids):
        raise ValueError(f"{len(latents)} latent images but {len(ids)} ids")
    names = [file_name(i) for i in ids]
    if len(set(names)) != len(names):
        raise ValueError("image ids collide once made file-name safe; give the images distinct names")
    jobs = check_jobs(jobs)
    todo = [i for i, name in enumerate(names) if not (folder / name).exists()]
    bar = tqdm(total=len(todo), desc=desc, unit="image", disable=not progress)
    if jobs == 1 or len(todo) <= 1:
        inner = progress and (len(todo) == 1 or latents.shape[1] * latents.shape[2] > LARGE)
        for i in todo:
            if not (folder / names[i]).exists():  # another process sharing the folder may have done it meanwhile
                _segment_to(folder / names[i], latents[i], seed, cpu_threads(), exact, inner, stage2)
            bar.update()
    else:
        from joblib import Parallel, delayed

        threads = max(1, cpu_threads() // jobs)  # workers x threads <= cores
        tasks = (delayed(_segment_to)(folder / names[i], np.asarray(latents[i]), seed, threads, exact, False, stage2)
                 for i in todo)
        for _ in Parallel(n_jobs=min(jobs, len(todo)), return_as="generator_unordered")(tasks):
            bar.update()
    bar.close()
    return folder


def stage2_exact(exact: bool | None = None) -> bool:
    """Whether data-set runs take the exact path: ``exact`` if given, else ``$CUTS_STAGE2``, else
    :data:`DEFAULT_PATH`; a ValueError for any other value of the variable."""
    if exact is not None:
        return bool(exact)
    path = os.environ.get("CUTS_STAGE2", DEFAULT_PATH).strip().lower()
    if path not in ("fast", "exact"):
        raise ValueError(f"CUTS_STAGE2 must be 'fast' or 'exact', got {path!r}")
    return path == "exact"


def segment_dataset(dataset, seed: int, config="quick", progress: bool = True, limit: int | None = None,
                    jobs: int | None = None, exact: bool | None = None, stage2: str = "multiscale") -> Path:
    """Segment every image of ``dataset`` (the first ``limit`` only, if given) with the encoder trained for
    (dataset, seed, config), training and embedding first if needed; ``jobs`` images at a time (see the
    module doc); the Stage-2 path of :func:`stage2_exact`; ``stage2`` one of :data:`STAGE2`. Returns the folder
    of ``<id>.npz``."""
    from cutslib.data import n_first
    from cutslib.embed import embed_dataset

    exact = stage2_exact(exact)
    stage2 = check_stage2(stage2)
    embeddings = embed_dataset(dataset, seed, config, progress=progress)
    settings = segment_settings(embeddings.path.name, seed, exact, stage2)
    folder = cache.run_dir("segment", dataset.name, seed, settings)
    n = n_first(limit, len(embeddings))
    path = stage2 if stage2 == "catch2023" else "exact" if exact else "fast"
    return segment_latents(embeddings.latents[:n], embeddings.ids[:n], folder, seed=seed, progress=progress,
                           desc=f"segment {dataset.name} ({path})", jobs=jobs, exact=exact, stage2=stage2)


def segment_settings(embeddings_folder: str, seed: int, exact: bool, stage2: str = "multiscale") -> dict:
    """The settings that key a data set's segmentation folder (``embeddings_folder``: the embedding's name);
    the 2023 Stage 2 has no exact or fast path."""
    if check_stage2(stage2) == "catch2023":
        return {"embeddings": str(embeddings_folder), "seed": seed, "stage2": stage2, "version": CATCH_VERSION}
    return {"embeddings": str(embeddings_folder), "knn": KNN, "seed": seed, "version": VERSION,
            "path": "exact" if exact else "fast"}


def load_segmentation(folder, image_id: str, keys=KEYS) -> dict:
    """The arrays of one image's segmentation (see the module doc; ``keys``: the arrays it must hold)."""
    path = Path(folder) / file_name(image_id)
    if not path.exists():
        raise FileNotFoundError(f"no segmentation for image {image_id!r} in {folder} (expected {path.name})")
    arrays = cache.load_npz(path)
    missing = [k for k in keys if k not in arrays]
    if missing:
        raise OSError(f"{path} lacks {missing}; delete it and rerun `cuts segment`")
    return arrays
