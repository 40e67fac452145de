"""Committed notebooks in one canonical, diff-friendly form: ``make clean-notebooks``.

    python -m cutslib.notebooks clean [PATH ...]   # rewrite notebooks (or every notebook under folders) in place
    python -m cutslib.notebooks check [PATH ...]   # list those not yet clean; exit status 1 if any

The canonical form is what :func:`nbformat.write` produces for nbformat 4.5: each cell's source stored as a list of
lines (so ``git diff`` shows changed lines), a stable id per cell, sorted keys, no outputs, no execution counts, and
no metadata but the kernel (notebook) and the tags (cells). Widget state, papermill and execution records are
dropped. Executed copies (``executed/``) and ``.ipynb_checkpoints`` are left alone.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import nbformat

__all__ = ["clean", "clean_text", "notebook_paths", "main"]

NOTEBOOK_METADATA = ("kernelspec",)
CELL_METADATA = ("tags",)
KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}


def clean(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The canonical form of ``nb`` (a copy): see the module doc."""
    nb = nbformat.v4.upgrade(nbformat.from_dict(nb))  # 4.x -> 4.5 (cell ids)
    nb.nbformat, nb.nbformat_minor = 4, 5
    nb.metadata = nbformat.from_dict({k: nb.metadata[k] for k in NOTEBOOK_METADATA if k in nb.metadata}
                                     or {"kernelspec": KERNELSPEC})
    nb.metadata["language_info"] = {"name": "python"}
    seen = set()
    for i, cell in enumerate(nb.cells):
        cell.metadata = nbformat.from_dict({k: cell.metadata[k] for k in CELL_METADATA if cell.metadata.get(k)})
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        if "attachments" in cell and not cell.attachments:
            del cell["attachments"]
        if not cell.get("id") or cell.id in seen:  # ids from the cell's place and text: stable across cleans
            cell.id = hashlib.sha1(f"{i}:{cell.source}".encode()).hexdigest()[:8]
        seen.add(cell.id)
    nbformat.validate(nb)
    return nb


def clean_text(path: str | Path) -> str:
    """The canonical text of the notebook at ``path``."""
    try:
        nb = nbformat.read(str(path), as_version=4)
    except Exception as exc:  # nbformat raises several kinds for unreadable files
        raise ValueError(f"{path}: not a readable notebook ({type(exc).__name__}: {exc})") from exc
    return nbformat.writes(clean(nb)) + "\n"


def notebook_paths(paths) -> list[Path]:
    """The notebooks named by ``paths``, folders searched recursively (executed copies and checkpoints skipped)."""
    found = []
    for p in map(Path, paths):
        if p.is_dir():
            found += [q for q in sorted(p.rglob("*.ipynb"))
                      if not {"executed", ".ipynb_checkpoints"} & set(q.relative_to(p).parts)]
        elif p.suffix == ".ipynb" and p.is_file():
            found.append(p)
        else:
            raise FileNotFoundError(f"{p} is neither a folder nor a notebook")
    return found


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in ("clean", "check"):
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    command, paths = args[0], args[1:] or [str(Path(__file__).resolve().parent.parent / "notebooks")]
    try:
        dirty = [p for p in notebook_paths(paths) if clean_text(p) != p.read_text()]
    except (ValueError, FileNotFoundError) as exc:
        print(f"cutslib.notebooks: error: {exc}", file=sys.stderr)
        return 2
    if command == "check":
        for p in dirty:
            print(f"{p}: not clean; run `make clean-notebooks`")
        return 1 if dirty else 0
    for p in dirty:
        p.write_text(clean_text(p))
        print(f"cleaned {p}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
