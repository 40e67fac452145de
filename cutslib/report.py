"""Stamped outputs: every figure and table says which profile, settings and commit made it.

>>> stamp = make_stamp("quick", {"datasets": ["retina"], "seeds": [1]})
>>> save_figure(fig, "fig1_trajectory", stamp)      # figures/fig1_trajectory.png and .pdf
>>> save_table(df, "table1", stamp)                 # figures/table1.csv and .md

The stamp is drawn small under the figure's lower-right corner and stored in the file metadata (PNG
``Description``, PDF ``Subject``); tables carry it as a ``#`` comment line (CSV) or a header line (Markdown).
Files are written atomically (temporary file, then rename), so an interrupted run leaves no half-written output.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cutslib.cache import PROJECT_ROOT, atomic_path, settings_hash, write_text

__all__ = ["Stamp", "make_stamp", "git_commit", "figures_dir", "save_figure", "save_table", "to_markdown",
           "read_table", "first_images"]


@dataclass(frozen=True)
class Stamp:
    """Which profile, settings (hash) and git commit made an output."""

    profile: str
    settings_hash: str
    commit: str

    @property
    def text(self) -> str:
        return f"CUTS companion | profile={self.profile} | settings={self.settings_hash} | commit={self.commit}"

    def __str__(self) -> str:
        return self.text


def git_commit(root: str | os.PathLike = PROJECT_ROOT) -> str:
    """Short hash of HEAD, with ``+dirty`` if tracked files differ from it (except under ``figures/``: the
    committed outputs, which a figures run rewrites, are not the code that made them); ``unknown`` outside git."""
    def git(*args):
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=30)

    try:
        head = git("rev-parse", "--short", "HEAD")
        if head.returncode != 0:
            return "unknown"
        dirty = git("status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)figures")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def make_stamp(profile: str, settings: dict | None = None, commit: str | None = None) -> Stamp:
    """The stamp for outputs made with ``profile`` and ``settings`` (any JSON-serialisable dict)."""
    if not isinstance(profile, str) or not profile:
        raise ValueError(f"profile must be a non-empty string, got {profile!r}")
    return Stamp(profile, settings_hash(settings or {}), commit if commit is not None else git_commit())


def figures_dir() -> Path:
    """Where figures and tables go: ``$CUTS_FIGURES_DIR``, else ``figures/`` in the project."""
    return Path(os.environ.get("CUTS_FIGURES_DIR", PROJECT_ROOT / "figures"))


def _check(name: str, stamp: Stamp) -> None:
    if not isinstance(stamp, Stamp):
        raise ValueError(f"stamp must be a cutslib.report.Stamp (see make_stamp), got {type(stamp).__name__}")
    if not name or Path(name).name != name or name.startswith("."):
        raise ValueError(f"output name must be a plain file name without folders, got {name!r}")


def save_figure(fig, name: str, stamp: Stamp, folder: str | os.PathLike | None = None, dpi: int = 120) -> list[Path]:
    """Write ``fig`` as ``<name>.png`` and ``<name>.pdf`` with the stamp drawn in a corner and in the metadata."""
    _check(name, stamp)
    folder = Path(folder) if folder is not None else figures_dir()
    # below the axes (the tight bounding box grows to hold it), so it never covers a label
    fig.text(0.995, 0.0, stamp.text, ha="right", va="top", fontsize=6.5, color="0.35")
    paths = []
    for ext, meta in (("png", {"Description": stamp.text, "Software": "cutslib"}),
                      ("pdf", {"Subject": stamp.text, "Creator": "cutslib"})):
        path = folder / f"{name}.{ext}"
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=ext, dpi=dpi, metadata=meta, bbox_inches="tight")
        paths.append(path)
    return paths


def _cell(value) -> str:
    if isinstance(value, (float, np.floating)):
        if np.isnan(value):
            return ""
        return f"{value:.0f}" if abs(value) >= 1000 else f"{value:.4g}"
    return "" if value is None or (not isinstance(value, str) and pd.isna(value)) else str(value)


def to_markdown(df: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table of ``df`` (floats to 4 significant digits or whole numbers from 1000 on,
    NaN as blank)."""
    header = [str(c) for c in df.columns]
    rows = [[_cell(v).replace("|", "\\|") for v in row] for row in df.itertuples(index=False)]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def save_table(df: pd.DataFrame, name: str, stamp: Stamp, folder: str | os.PathLike | None = None,
               title: str | None = None) -> list[Path]:
    """Write ``df`` as ``<name>.csv`` (stamp as a leading ``#`` comment) and ``<name>.md`` (stamp line on top)."""
    _check(name, stamp)
    if not isinstance(df, pd.DataFrame):
        raise ValueError(f"save_table wants a pandas DataFrame, got {type(df).__name__}")
    if df.empty:
        raise ValueError(f"table {name!r} is empty; nothing to save")
    folder = Path(folder) if folder is not None else figures_dir()
    csv_path, md_path = folder / f"{name}.csv", folder / f"{name}.md"
    write_text(csv_path, f"# {stamp.text}\n" + df.to_csv(index=False))
    heading = f"**{title}**\n\n" if title else ""
    write_text(md_path, f"{heading}_{stamp.text}_\n\n" + to_markdown(df))
    return [csv_path, md_path]


def read_table(path: str | os.PathLike) -> pd.DataFrame:
    """Read a CSV written by :func:`save_table` (skips the stamp comment)."""
    with open(path) as f:
        stamped = f.readline().startswith("# ")
    return pd.read_csv(path, skiprows=1 if stamped else 0)


def first_images(dataset, n_images: int | None):
    """The first ``n_images`` images of ``dataset`` (all of them if ``n_images`` is None): a profile's subset."""
    from cutslib.data import n_first

    n = n_first(n_images, len(dataset), "n_images")
    return dataset if n_images is None else dataset.subset(range(n))
