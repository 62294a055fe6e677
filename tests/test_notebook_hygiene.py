"""Committed notebooks hold only what nbval compares: no widget state, no errors, no ignored outputs."""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import build_notebooks as bn  # noqa: E402
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb")) + sorted((ROOT / "notebooks" / "solutions").glob("*.ipynb"))
IGNORE_TAG = "nbval-ignore-output"
# the single-source markers of scripts/build_notebooks.py: a generated notebook never shows them
SOURCE_MARKERS = (bn.BEGIN_SOLUTION, bn.END_SOLUTION, bn.STARTER, bn.BEGIN_HIDDEN, bn.END_HIDDEN,
                  bn.BEGIN_EXPLANATION, bn.END_EXPLANATION)


def problems(nb: nbformat.NotebookNode) -> list[str]:
    """What a committed notebook must not contain, one line per finding."""
    found = []
    if "widgets" in nb.metadata:  # ipywidgets state: progress-bar values, losses, timings of one run
        found.append("metadata.widgets (ipywidgets state): run scripts/make_outputs.py, which strips it")
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        if any(marker in cell.source for marker in SOURCE_MARKERS):
            found.append(f"cell {index}: a source marker (edit authoring/, then `make notebooks`)")
        if IGNORE_TAG in cell.metadata.get("tags", []) and cell.outputs:
            found.append(f"cell {index}: outputs stored in a cell tagged {IGNORE_TAG}")
        for output in cell.outputs:
            if output.output_type == "error":
                found.append(f"cell {index}: a stored error ({output.get('ename')})")
            if "application/vnd.jupyter.widget-view+json" in output.get("data", {}):
                found.append(f"cell {index}: a widget view in the outputs")
    return found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: str(path.relative_to(ROOT)))
def test_committed_notebook_is_clean(path):
    found = problems(nbformat.read(path, as_version=4))
    assert not found, f"{path.relative_to(ROOT)}:\n" + "\n".join(found)


def test_the_check_finds_each_problem():
    nb = nbformat.v4.new_notebook()
    assert problems(nb) == []
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    ignored = nbformat.v4.new_code_cell("print(time.time())", metadata={"tags": [IGNORE_TAG]})
    ignored.outputs = [nbformat.v4.new_output("stream", text="1700000000.0\n")]
    failed = nbformat.v4.new_code_cell("1 / 0")
    failed.outputs = [nbformat.v4.new_output("error", ename="ZeroDivisionError", evalue="division by zero", traceback=[])]
    leaked = nbformat.v4.new_code_cell("def f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION")
    nb.cells = [ignored, failed, leaked]
    found = problems(nb)
    assert len(found) == 4 and "widgets" in found[0] and "cell 0" in found[1] and "ZeroDivisionError" in found[2]
    assert "cell 2: a source marker" in found[3]
