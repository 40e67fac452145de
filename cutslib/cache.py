"""On-disk caching shared by every stage: result folders keyed by settings, and atomic writes.

Every stage writes its outputs under ``results_dir() / <dataset> / seed<k> / <settings hash>``. A file is
written to a temporary name in the same folder and then renamed, so an interrupted run never leaves a
half-written file behind that a later run would trust.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np

PROJECT_ROOT = Path(__file__).resolve().parent.parent
_UMASK = os.umask(0)
os.umask(_UMASK)


def results_dir() -> Path:
    """Root folder of cached results: ``$CUTS_RESULTS_DIR``, else ``results/`` in the project."""
    return Path(os.environ.get("CUTS_RESULTS_DIR", PROJECT_ROOT / "results"))


def settings_hash(settings: dict) -> str:
    """A short, stable hash of a JSON-serialisable settings dict (key order does not matter)."""
    blob = json.dumps(settings, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:10]


def images_digest(dataset, masks: bool = False) -> str:
    """SHA-256 of a data set's ids and image bytes (and its masks, if asked): part of cache keys, so that two
    folders with the same name, or edited images or masks, never share cached results."""
    h = hashlib.sha256("\n".join(dataset.ids).encode())
    h.update(np.ascontiguousarray(dataset.images, dtype=np.float32).tobytes())
    if masks and dataset.masks is not None:
        h.update(np.ascontiguousarray(dataset.masks, dtype=np.int64).tobytes())
    return h.hexdigest()


def run_path(stage: str, dataset: str, seed: int, settings: dict) -> Path:
    """Where :func:`run_dir` keeps one stage's outputs, without creating it; a TypeError if ``seed`` is not a
    whole number (a seed such as ``"[2021]"``, a list passed as text, would otherwise name a folder)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be a whole number, got {seed!r} ({type(seed).__name__})")
    return results_dir() / dataset / f"seed{seed}" / f"{stage}-{settings_hash(settings)}"


def run_dir(stage: str, dataset: str, seed: int, settings: dict) -> Path:
    """The folder for one stage's outputs: ``results/<dataset>/seed<seed>/<stage>-<hash>``.

    The settings are written beside the outputs (``settings.json``) so a folder explains itself.
    """
    path = run_path(stage, dataset, seed, settings)
    path.mkdir(parents=True, exist_ok=True)
    if not (path / "settings.json").exists():
        write_text(path / "settings.json", json.dumps(settings, indent=2, sort_keys=True, default=str))
    return path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path beside ``path``; on success rename it onto ``path``, on error delete it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; give them the usual permissions
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_text(path, text: str) -> None:
    """Atomically write a text file."""
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text)


def save_npz(path, **arrays) -> None:
    """Atomically write a compressed ``.npz`` file."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)


def load_npz(path) -> dict:
    """Load every array of a ``.npz`` file into memory, naming the file if it is corrupt."""
    try:
        with np.load(path, allow_pickle=False) as f:
            return {k: f[k] for k in f.files}
    except Exception as exc:  # zipfile.BadZipFile, ValueError, EOFError, ...
        raise OSError(f"cached file {path} is corrupt or truncated ({exc}); delete it and rerun") from exc
