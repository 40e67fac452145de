"""Committed notebooks carry no outputs and no execution metadata, and have a papermill parameters cell.

Runtime: well under a second.
"""

import json
from pathlib import Path

import pytest

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(p for p in NOTEBOOK_DIR.rglob("*.ipynb")
                   if "executed" not in p.relative_to(NOTEBOOK_DIR).parts and ".ipynb_checkpoints" not in p.parts)
ALLOWED_NOTEBOOK_METADATA = {"kernelspec", "language_info"}
ALLOWED_CELL_METADATA = {"tags"}


def test_every_tutorial_has_a_solutions_copy_with_the_same_cells():
    tutorials = [p for p in NOTEBOOKS if p.parent.name == "tutorials" and not p.stem.endswith("_solutions")]
    assert len(tutorials) >= 3, NOTEBOOKS
    for path in tutorials:
        solutions = path.with_name(path.stem + "_solutions.ipynb")
        assert solutions.exists(), f"{path.name} has no solutions copy"
        assert len(json.loads(path.read_text())["cells"]) == len(json.loads(solutions.read_text())["cells"])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(NOTEBOOK_DIR)))
def test_notebook_is_clean(path):
    nb = json.loads(path.read_text())
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
