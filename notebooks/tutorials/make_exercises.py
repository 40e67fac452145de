"""Make each tutorial's exercise copy from its solutions copy, the one source: ``python make_exercises.py``.

In ``T*_solutions.ipynb``, the lines of an answer sit between two marker lines::

    ### BEGIN SOLUTION my_loss =
    sim = z @ z.T / tau
    ...
    ### END SOLUTION

The exercise copy ``T*.ipynb`` gets, in their place, the stub ``my_loss = None  # TODO: your code here`` (the
text after ``BEGIN SOLUTION`` followed by ``None``; ``pass`` when there is no text), at the marker's indentation.
Everything else is copied as it is (cell ids too), and the copy is written in the canonical form of
``cutslib.notebooks``. ``--check`` changes nothing and exits 1 if a copy is out of date.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import nbformat

from cutslib import notebooks

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
HERE = Path(__file__).resolve().parent


def exercise_source(source: str | list[str]) -> str | list[str]:
    """A cell's source (a string or a list of lines, returned alike) with every solution block replaced by its
    stub."""
    lines = source.splitlines(keepends=True) if isinstance(source, str) else source
    out, stub = [], None
    for line in lines:
        text = line.strip()
        if text.startswith(BEGIN):
            if stub is not None:
                raise ValueError(f"nested {BEGIN}: {line!r}")
            indent = line[: len(line) - len(line.lstrip())]
            prefix = text[len(BEGIN):].strip()
            stub = indent + (f"{prefix} None" if prefix else "pass") + "  # TODO: your code here\n"
        elif text.startswith(END):
            if stub is None:
                raise ValueError(f"{END} without {BEGIN}")
            out.append(stub)
            stub = None
        elif stub is None:
            out.append(line)
    if stub is not None:
        raise ValueError(f"{BEGIN} without {END}: {stub.strip()!r}")
    if out and not lines[-1].endswith("\n"):
        out[-1] = out[-1].rstrip("\n")
    return "".join(out) if isinstance(source, str) else out


def exercise_notebook(solutions: dict) -> dict:
    """The exercise copy of a solutions notebook (a new dict)."""
    notebook = copy.deepcopy(solutions)
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code":
            cell["source"] = exercise_source(cell["source"])
    return notebook


def exercise_path(solutions_path: Path) -> Path:
    return solutions_path.with_name(solutions_path.name.replace("_solutions", ""))


def exercise_text(solutions_path: Path) -> str:
    """The canonical text of the exercise copy of the solutions notebook at ``solutions_path``."""
    solutions = nbformat.read(str(solutions_path), as_version=4)
    return nbformat.writes(notebooks.clean(exercise_notebook(solutions))) + "\n"


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for path in sorted(HERE.glob("T*_solutions.ipynb")):
        target = exercise_path(path)
        text = exercise_text(path)
        if target.exists() and target.read_text() == text:
            continue
        stale.append(target.name)
        if not check:
            target.write_text(text)
    verb = "out of date" if check else "written"
    print(f"{verb}: {', '.join(stale)}" if stale else "every exercise copy is up to date")
    return 1 if check and stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
