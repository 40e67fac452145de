"""Committed notebooks are in the canonical form of `make clean-notebooks` (cutslib.notebooks): no outputs, no
execution or widget metadata, sources as line lists, cell ids, nbformat 4.5; and they have a parameters cell.

Runtime: about a second.
"""

import json
from pathlib import Path

import nbformat
import pytest

from cutslib import notebooks

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(p for p in NOTEBOOK_DIR.rglob("*.ipynb")
                   if "executed" not in p.relative_to(NOTEBOOK_DIR).parts and ".ipynb_checkpoints" not in p.parts)
ALLOWED_NOTEBOOK_METADATA = {"kernelspec", "language_info"}
ALLOWED_CELL_METADATA = {"tags"}


def test_every_tutorial_has_a_solutions_copy_with_the_same_cells():
    tutorials = [p for p in NOTEBOOKS if p.parent.name == "tutorials" and not p.stem.endswith("_solutions")
                 and not p.name.startswith("T0_")]  # T0 is the set-up check: no exercises, no solutions copy
    assert len(tutorials) >= 3, NOTEBOOKS
    for path in tutorials:
        solutions = path.with_name(path.stem + "_solutions.ipynb")
        assert solutions.exists(), f"{path.name} has no solutions copy"
        assert len(json.loads(path.read_text())["cells"]) == len(json.loads(solutions.read_text())["cells"])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(NOTEBOOK_DIR)))
def test_notebook_is_clean(path):
    assert notebooks.clean_text(path) == path.read_text(), f"{path.name} is not clean: run `make clean-notebooks`"
    nb = json.loads(path.read_text())
    assert (nb["nbformat"], nb["nbformat_minor"]) == (4, 5)
    assert all(isinstance(c["source"], list) and c.get("id") for c in nb["cells"]), path.name
    extra = set(nb.get("metadata", {})) - ALLOWED_NOTEBOOK_METADATA
    assert not extra, f"{path.name}: notebook metadata {sorted(extra)} (papermill/execution leftovers)"
    for i, cell in enumerate(nb["cells"]):
        where = f"{path.name} cell {i}"
        assert set(cell.get("metadata", {})) <= ALLOWED_CELL_METADATA, f"{where}: metadata {cell['metadata']}"
        if cell["cell_type"] == "code":
            assert cell.get("outputs") == [], f"{where} has outputs"
            assert cell.get("execution_count") is None, f"{where} has an execution count"


@pytest.mark.parametrize("path", [p for p in NOTEBOOKS if p.parent == NOTEBOOK_DIR and p.name[:2] != "00"],
                         ids=lambda p: p.name)
def test_pipeline_and_figure_notebooks_have_a_parameters_cell(path):
    nb = json.loads(path.read_text())
    tagged = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: needs exactly one cell tagged 'parameters'"
    assert "profile" in "".join(tagged[0]["source"]), f"{path.name}: parameters cell must set `profile`"


def test_clean_strips_outputs_widget_state_and_execution_records(tmp_path):
    dirty = {"nbformat": 4, "nbformat_minor": 4,
             "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                          "widgets": {"application/vnd.jupyter.widget-state+json": {"state": {"x": 1}}},
                          "papermill": {"duration": 3.0}, "language_info": {"name": "python", "version": "3.12"}},
             "cells": [{"cell_type": "code", "execution_count": 7, "metadata": {"execution": {"a": 1}, "tags": []},
                        "source": "x = 1\nprint(x)",
                        "outputs": [{"output_type": "stream", "name": "stdout", "text": "1\n"}]},
                       {"cell_type": "markdown", "metadata": {"tags": ["note"]}, "source": "# Title\ntext"}]}
    path = tmp_path / "dirty.ipynb"
    path.write_text(json.dumps(dirty))
    assert notebooks.main(["check", str(path)]) == 1
    assert notebooks.main(["clean", str(tmp_path)]) == 0
    nb = json.loads(path.read_text())
    assert set(nb["metadata"]) == ALLOWED_NOTEBOOK_METADATA and nb["nbformat_minor"] == 5
    code, text = nb["cells"]
    assert code["outputs"] == [] and code["execution_count"] is None and code["metadata"] == {}
    assert code["source"] == ["x = 1\n", "print(x)"] and text["metadata"] == {"tags": ["note"]}
    ids = [c["id"] for c in nb["cells"]]
    assert len(set(ids)) == 2 and notebooks.main(["check", str(path)]) == 0
    nbformat.validate(nbformat.reads(path.read_text(), as_version=4))
    path.write_text("{not json")
    with pytest.raises(ValueError, match="not a readable notebook"):
        notebooks.clean_text(path)
