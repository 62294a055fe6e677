"""Build the learner and solutions notebooks from the single source of each chapter (`make notebooks`).

Every chapter is written once, in `authoring/NN_name.ipynb`: the lesson, the exercises with
their reference solutions and self-checks, the solutions notebook's own cells and the
nbgrader assignment's. This script writes from it

    notebooks/NN_name.ipynb            what learners open: the lesson, exercises with starter code
    notebooks/solutions/NN_name.ipynb  setup, the worked exercises, their explanations

and `scripts/classroom.py` builds the nbgrader assignment from the same file (`make classroom`).
Both generated notebooks are committed, with the outputs of the canonical run, and must not be
edited by hand: `python scripts/build_notebooks.py --check` (and tests/test_build_notebooks.py)
fails when one is out of date with its source.

Which notebooks a source cell goes into: its cell tags (JupyterLab: the property inspector,
"Cell Tags"). Tags `learner`, `solutions`, `assignment` name the notebooks; a cell with none of
them is lesson: learner notebook only. `source-only` cells (notes for authors) go nowhere.
Other tags (`nbval-ignore-output`) are kept.

Inside a code cell, comment lines mark regions (markers stand alone on their line):

    ### BEGIN SOLUTION / ### END SOLUTION   the reference answer (nbgrader's own markers). The learner
                                            notebook gets the starter instead: the `### STARTER: ...`
                                            lines inside the region, else `raise NotImplementedError
                                            # your code here`, at the marker's indentation.
    ### STARTER: <code>                     one line of starter code (inside a solution region).
    ### BEGIN EXPLANATION / ### END EXPLANATION   lines for the solutions notebook only (demos,
                                            extra asserts); neither learners nor the assignment see them.
    ### BEGIN HIDDEN TESTS / ### END HIDDEN TESTS   nbgrader hidden tests: only in the assignment's
                                            source (nbgrader strips them from what students get).

A cell with a solution region is an exercise cell. It must be tagged `learner` and `solutions`
(and `assignment` to be graded). Its self-checks are written as the solutions notebook shows them,
`assert course_utils.check_...(...)`; the learner notebook shows the bare call, so a wrong answer
prints its hint instead of raising, followed by `;` when it is the cell's last statement (no `True`
echoed). The assignment splits the cell after the statement holding the last solution region: the
answer cell (graded by the tests) and a locked test cell worth `metadata.course.points` (default 1).

Outputs: a generated cell keeps the stored outputs of the committed cell with the same id (or, failing
that, the same source) when its source did not change; other cells come out empty, and the script
names the notebooks to re-run with `python scripts/make_outputs.py PATH`. The build is deterministic:
the same source and committed notebooks give the same bytes.

Two deliberate additions to every generated notebook: a first code cell that installs the course
package when `course_utils` is not importable (hosted notebooks), and, once REPOSITORY names the
published course, "Open in Colab/Kaggle" links under the title. REPOSITORY and RELEASE_TAG below are
the one place that says where from; until REPOSITORY is set there are no links (they would lead
nowhere) and the install cell installs from COURSE_PACKAGE_SOURCE or says how to get the package.

    python scripts/build_notebooks.py            # every chapter in authoring/
    python scripts/build_notebooks.py 01 02      # some chapters (by number or name)
    python scripts/build_notebooks.py --check    # exit 1 if a committed notebook is out of date

Converting a chapter that still has two hand-written notebooks: scripts/convert_chapter.py.
"""

from __future__ import annotations

import argparse
import ast
import copy
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
SOURCE_DIR = ROOT / "authoring"
LEARNER_DIR = ROOT / "notebooks"
SOLUTIONS_DIR = LEARNER_DIR / "solutions"

# Where hosted notebooks (Colab, Kaggle) install the course package from: the repository at a tag.
# None until the course has a public address: set it (e.g. "https://github.com/OWNER/transformers-course")
# for the first release; a release = tag the commit with RELEASE_TAG, then `make notebooks`.
REPOSITORY: str | None = None
RELEASE_TAG = "v0.1.0"

AUDIENCES = ("learner", "solutions", "assignment")
SOURCE_ONLY = "source-only"
COURSE_TAGS = set(AUDIENCES) | {SOURCE_ONLY}
DEFAULT_STARTER = "raise NotImplementedError  # your code here"

BEGIN_SOLUTION, END_SOLUTION, STARTER = "### BEGIN SOLUTION", "### END SOLUTION", "### STARTER:"
BEGIN_EXPLANATION, END_EXPLANATION = "### BEGIN EXPLANATION", "### END EXPLANATION"
BEGIN_HIDDEN, END_HIDDEN = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
_REGIONS = {BEGIN_SOLUTION: ("solution", END_SOLUTION), BEGIN_EXPLANATION: ("explanation", END_EXPLANATION),
            BEGIN_HIDDEN: ("hidden", END_HIDDEN)}
_ENDS = {END_SOLUTION, END_EXPLANATION, END_HIDDEN}
_KEYWORDS = re.compile(r"(BEGIN|END) (SOLUTION|EXPLANATION|HIDDEN TESTS)|### STARTER")
ASSERT = "assert "

COLAB_CELL_ID = "colab-setup"
COLAB_CELL = """\
# Colab, Kaggle or any Jupyter without the course installed: install its helper package, course_utils,
# from the course repository (nothing else). In the course's own environment this cell does nothing.
import importlib, importlib.util, os, subprocess, sys

if importlib.util.find_spec("course_utils") is None:
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet",
                    os.environ.get("COURSE_PACKAGE_SOURCE", "git+{repository}@{tag}")], check=True)
    importlib.invalidate_caches()"""
COLAB_CELL_UNPUBLISHED = """\
# Colab, Kaggle or any Jupyter without the course installed: install its helper package, course_utils
# (nothing else). In the course's own environment this cell does nothing.
import importlib, importlib.util, os, subprocess, sys

if importlib.util.find_spec("course_utils") is None:
    if not os.environ.get("COURSE_PACKAGE_SOURCE"):
        raise ModuleNotFoundError(
            "course_utils, the course's helper package, is not installed in this Python. Open the notebook "
            "in the course's environment (in the course folder: make lab), or set COURSE_PACKAGE_SOURCE "
            "to what pip should install it from (e.g. the path of the course folder) and run this cell again.")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", os.environ["COURSE_PACKAGE_SOURCE"]],
                   check=True)
    importlib.invalidate_caches()"""


class SourceError(ValueError):
    """A source notebook that cannot be built; the message names the cell and what to fix."""


@dataclass
class Region:
    """A run of lines of a code cell: plain, or inside one kind of marked region."""

    kind: str  # "plain", "solution", "explanation" or "hidden"
    lines: list[str] = field(default_factory=list)
    indent: str = ""  # the BEGIN marker's indentation
    starter: list[str] = field(default_factory=list)  # solution regions: the learner's lines
    begin: int = 0  # index of the BEGIN marker line (the first line for plain runs)
    end: int = 0  # index of the END marker line (the last line for plain runs)


def regions(text: str) -> list[Region]:
    """Split a code cell at its marker lines; raise SourceError on a marker out of place."""
    found: list[Region] = []
    current: Region | None = None
    for number, line in enumerate(text.split("\n")):
        stripped = line.strip()
        marker = stripped if stripped.startswith("### ") else ""
        if _KEYWORDS.search(stripped) and not (marker in _REGIONS or marker in _ENDS or marker.startswith(STARTER)):
            raise SourceError(f"line {number + 1}: {stripped!r} looks like a marker but is not one; markers "
                              "stand alone on their line, e.g. '### BEGIN SOLUTION'")
        if current is None or current.kind == "plain":
            if marker in _REGIONS:
                current = Region(_REGIONS[marker][0], indent=line[: len(line) - len(line.lstrip())], begin=number)
                found.append(current)
                continue
            if marker in _ENDS or marker.startswith(STARTER):
                raise SourceError(f"line {number + 1}: {marker!r} outside a region that it could close or belong to")
            if current is None:
                current = Region("plain", begin=number)
                found.append(current)
            current.lines.append(line)
            current.end = number
            continue
        if marker == _closing(current.kind):
            current.end = number
            current = None
        elif marker.startswith(STARTER) and current.kind == "solution":
            code = stripped[len(STARTER):]
            current.starter.append(current.indent + code[1:] if code.startswith(" ") else current.indent + code)
        elif marker in _REGIONS or marker in _ENDS or marker.startswith(STARTER):
            raise SourceError(f"line {number + 1}: {marker!r} inside a {current.kind} region (regions do not nest)")
        else:
            current.lines.append(line)
    if current is not None and current.kind != "plain":
        raise SourceError(f"a {current.kind} region is not closed: add {_closing(current.kind)!r}")
    return found


def _closing(kind: str) -> str:
    return {"solution": END_SOLUTION, "explanation": END_EXPLANATION, "hidden": END_HIDDEN}[kind]


def render(text: str, flavour: str) -> str:
    """A code cell's source as the learner, solutions or assignment (nbgrader source) notebook shows it."""
    parts = regions(text)
    out: list[str] = []
    for part in parts:
        if part.kind == "plain":
            out += part.lines
        elif part.kind == "solution":
            if flavour == "learner":
                out += part.starter or [part.indent + DEFAULT_STARTER]
            elif flavour == "solutions":
                out += part.lines
            else:  # nbgrader's markers; the starter lines stay for scripts/classroom.py's ClearSolutions
                starter = [part.indent + STARTER + " " + line[len(part.indent):] for line in part.starter]
                out += [part.indent + BEGIN_SOLUTION, *part.lines, *starter, part.indent + END_SOLUTION]
        elif part.kind == "explanation" and flavour == "solutions":
            out += part.lines
        elif part.kind == "hidden" and flavour == "assignment":
            out += [part.indent + BEGIN_HIDDEN, *part.lines, part.indent + END_HIDDEN]
    result = "\n".join(out)
    if flavour == "learner" and any(part.kind == "solution" for part in parts):
        result = checks_for_learners(result)
    return result


def is_exercise(text: str) -> bool:
    return any(line.strip() == BEGIN_SOLUTION for line in text.split("\n"))


# --- self-checks: `assert course_utils.check_x(...)` (solutions) <-> `course_utils.check_x(...)` (learners)


def _is_check_call(node: ast.AST) -> bool:
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name) and node.func.value.id == "course_utils"
            and node.func.attr.startswith("check_"))


def _column(line: str, byte_offset: int) -> int:
    """ast counts columns in UTF-8 bytes; strings count characters."""
    return len(line.encode("utf-8")[:byte_offset].decode("utf-8"))


def _parse(text: str) -> ast.Module | None:
    try:
        return ast.parse(text)
    except SyntaxError:
        if "course_utils.check_" in text:
            raise SourceError("an exercise cell with a self-check must be plain Python (no magics)") from None
        return None


def _aligned(lines: list[str], first: int, call: ast.Call) -> bool:
    """Continuation lines aligned with the call's opening bracket move with it."""
    if call.end_lineno == call.lineno:
        return False
    opening = _column(lines[first], call.func.end_col_offset)  # the "(" right after course_utils.check_x
    following = lines[first + 1]
    return len(following) - len(following.lstrip(" ")) == opening + 1


def checks_for_learners(text: str) -> str:
    """Turn each `assert course_utils.check_x(...)` into the bare call (see the module docstring)."""
    tree = _parse(text)
    if tree is None:
        return text
    lines = text.split("\n")
    last = tree.body[-1] if tree.body else None
    found = [node for node in ast.walk(tree)
             if isinstance(node, ast.Assert) and node.msg is None and _is_check_call(node.test)]
    for node in sorted(found, key=lambda n: n.lineno, reverse=True):
        first, end = node.lineno - 1, node.end_lineno - 1
        if node is last:  # IPython would echo the check's True/False: silence it
            column = _column(lines[end], node.end_col_offset)
            lines[end] = lines[end][:column] + ";" + lines[end][column:]
        if _aligned(lines, first, node.test):
            for number in range(first + 1, end + 1):
                if not lines[number].startswith(" " * len(ASSERT)) and lines[number].strip():
                    raise SourceError(f"line {number + 1}: cannot move this continuation line left by "
                                      f"{len(ASSERT)} spaces with its check")
                lines[number] = lines[number][len(ASSERT):]
        column = _column(lines[first], node.col_offset)
        lines[first] = lines[first][:column] + lines[first][column + len(ASSERT):]
    return "\n".join(lines)


def checks_for_solutions(text: str) -> str:
    """The inverse of checks_for_learners: assert each bare `course_utils.check_x(...)` call."""
    tree = _parse(text)
    if tree is None:
        return text
    lines = text.split("\n")
    found = [node for node in ast.walk(tree) if isinstance(node, ast.Expr) and _is_check_call(node.value)]
    for node in sorted(found, key=lambda n: n.lineno, reverse=True):
        first, end = node.lineno - 1, node.end_lineno - 1
        column = _column(lines[end], node.end_col_offset)
        rest = lines[end][column:].lstrip()
        if rest.startswith(";"):  # the learner's `;` that hid the check's return value
            rest = rest[1:]
            lines[end] = lines[end][:column] + (rest if rest.strip() else "")
        aligned = _aligned(lines, first, node.value)
        column = _column(lines[first], node.col_offset)
        lines[first] = lines[first][:column] + ASSERT + lines[first][column:]
        if aligned:
            for number in range(first + 1, end + 1):
                if lines[number].strip():
                    lines[number] = " " * len(ASSERT) + lines[number]
    return "\n".join(lines)


# --- notebooks


def audiences(cell: nbformat.NotebookNode) -> set[str]:
    tags = set(cell.metadata.get("tags", []))
    if SOURCE_ONLY in tags:
        return set()
    return (tags & set(AUDIENCES)) or {"learner"}


def generated_metadata(cell: nbformat.NotebookNode) -> dict:
    """The source cell's metadata without what only the source needs (course tags, points)."""
    metadata = copy.deepcopy(dict(cell.metadata))
    metadata.pop("course", None)
    tags = [tag for tag in metadata.pop("tags", []) if tag not in COURSE_TAGS]
    if tags:
        metadata["tags"] = tags
    return metadata


def github_path(path_in_repo: str) -> str:
    owner_repo = REPOSITORY.removeprefix("https://github.com/").removesuffix(".git")
    return f"{owner_repo}/blob/{RELEASE_TAG}/{path_in_repo}"


def hosted_links(path_in_repo: str) -> str | None:
    """The "Open in Colab/Kaggle" line under the title; None while the course has no public REPOSITORY."""
    if REPOSITORY is None:
        return None
    path = github_path(path_in_repo)
    return (f"[Open in Colab](https://colab.research.google.com/github/{path}) · "
            f"[Open in Kaggle](https://www.kaggle.com/kernels/welcome?src=https://github.com/{path}) "
            "(the first code cell installs the course package there)")


def colab_cell_source() -> str:
    if REPOSITORY is None:
        return COLAB_CELL_UNPUBLISHED
    return COLAB_CELL.format(repository=REPOSITORY, tag=RELEASE_TAG)


def with_hosting(cells: list[nbformat.NotebookNode], path_in_repo: str) -> list[nbformat.NotebookNode]:
    """Add the deliberate additions: links under the title (once published), the install cell before the first code cell."""
    cells = list(cells)
    title = cells[0] if cells and cells[0].cell_type == "markdown" else None
    if title is None or not title.source.startswith("# "):
        raise SourceError(f"{path_in_repo}: the first cell must be a markdown title ('# ...')")
    links = hosted_links(path_in_repo)
    if links is not None:
        heading, _, rest = title.source.partition("\n")
        cells[0] = nbformat.v4.new_markdown_cell(f"{heading}\n\n{links}\n{rest}".rstrip("\n"),
                                                 id=title.id, metadata=title.metadata)
    first_code = next((index for index, cell in enumerate(cells) if cell.cell_type == "code"), len(cells))
    cells.insert(first_code, nbformat.v4.new_code_cell(colab_cell_source(), id=COLAB_CELL_ID))
    return cells


def without_hosting(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A generated notebook without the deliberate additions of with_hosting (for comparisons, conversions)."""
    nb = copy.deepcopy(nb)
    nb.cells = [cell for cell in nb.cells if cell.get("id") != COLAB_CELL_ID]
    if nb.cells and nb.cells[0].cell_type == "markdown":
        heading, _, rest = nb.cells[0].source.partition("\n")
        links = rest.split("\n", 2)
        if len(links) >= 2 and links[0] == "" and links[1].startswith("[Open in Colab]("):
            nb.cells[0].source = (heading + "\n" + (links[2] if len(links) > 2 else "")).rstrip("\n")
    return nb


def select(source: nbformat.NotebookNode, audience: str, flavour: str) -> list[nbformat.NotebookNode]:
    """The source's cells for one notebook, rendered in one flavour (learner, solutions, assignment)."""
    cells = []
    for index, cell in enumerate(source.cells):
        if audience not in audiences(cell):
            continue
        text = cell.source
        if cell.cell_type == "code":
            try:
                text = render(text, flavour)
            except SourceError as error:
                raise SourceError(f"cell {index} (id {cell.get('id')}): {error}") from None
            new = nbformat.v4.new_code_cell(text, id=cell.id, metadata=generated_metadata(cell))
        else:
            new = nbformat.NotebookNode(cell_type=cell.cell_type, id=cell.id, metadata=generated_metadata(cell),
                                        source=text)
            if "attachments" in cell:
                new["attachments"] = copy.deepcopy(cell["attachments"])
        cells.append(new)
    return cells


def validate(source: nbformat.NotebookNode, name: str) -> None:
    ids = [cell.get("id") for cell in source.cells]
    if len(set(ids)) != len(ids) or None in ids:
        raise SourceError(f"{name}: every cell needs its own id (nbformat 4.5)")
    for index, cell in enumerate(source.cells):
        where = f"{name}, cell {index} (id {cell.id})"
        if cell.cell_type == "code" and cell.get("outputs"):
            raise SourceError(f"{where}: a source cell stores outputs; clear them (outputs live in notebooks/)")
        if cell.cell_type != "code":
            continue
        try:
            kinds = {part.kind for part in regions(cell.source)}
        except SourceError as error:
            raise SourceError(f"{where}: {error}") from None
        if "solution" in kinds:
            missing = {"learner", "solutions"} - audiences(cell)
            if missing:
                raise SourceError(f"{where}: an exercise cell must also be tagged {sorted(missing)}")
        elif kinds & {"hidden", "explanation"}:
            raise SourceError(f"{where}: explanation and hidden-test regions belong in an exercise cell "
                              "(one with a solution region); a cell for the solutions notebook only is "
                              "tagged `solutions`")


def keep_outputs(new: nbformat.NotebookNode, old: nbformat.NotebookNode | None,
                 carry: dict[str, nbformat.NotebookNode] | None = None) -> list[str]:
    """Copy stored outputs from the committed notebook to every unchanged cell; return the ids left empty."""
    by_id = {cell.get("id"): cell for cell in old.cells} if old is not None else {}
    by_source: dict[tuple[str, str], list[nbformat.NotebookNode]] = {}
    for cell in old.cells if old is not None else []:
        by_source.setdefault((cell.cell_type, cell.source), []).append(cell)
    used: set[int] = set()
    empty = []
    for cell in new.cells:
        if cell.cell_type != "code":
            continue
        match = (carry or {}).get(cell.id)  # the converter's explicit choice comes first
        if match is None:
            match = by_id.get(cell.id)
        if match is None or match.cell_type != "code" or (match.source != cell.source and cell.id not in (carry or {})) \
                or id(match) in used:
            match = next((c for c in by_source.get(("code", cell.source), []) if id(c) not in used), None)
        if match is None:
            cell.outputs, cell.execution_count = [], None
            if cell.source.strip():
                empty.append(cell.id)
            continue
        used.add(id(match))
        cell.outputs = copy.deepcopy(match.get("outputs", []))
        cell.execution_count = match.get("execution_count")
    return empty


def new_notebook(source: nbformat.NotebookNode, cells: list, old: nbformat.NotebookNode | None):
    nb = nbformat.v4.new_notebook(cells=cells, metadata=nbformat.from_dict(copy.deepcopy(dict(source.metadata))))
    nb.nbformat, nb.nbformat_minor = 4, 5
    if old is not None and "language_info" in old.metadata:  # make_outputs records the kernel's
        nb.metadata["language_info"] = copy.deepcopy(old.metadata["language_info"])
    return nb


@dataclass
class Chapter:
    """One source notebook and the two notebooks generated from it."""

    source_path: Path

    @property
    def name(self) -> str:
        return self.source_path.stem

    @property
    def learner_path(self) -> Path:
        return LEARNER_DIR / self.source_path.name

    @property
    def solutions_path(self) -> Path:
        return SOLUTIONS_DIR / self.source_path.name

    def read_source(self) -> nbformat.NotebookNode:
        source = nbformat.read(self.source_path, as_version=4)
        validate(source, self.source_path.name)
        return source

    def build(self, carry: dict[str, dict[str, nbformat.NotebookNode]] | None = None):
        """(learner, solutions) notebooks and, for each, the ids of code cells left without outputs."""
        source = self.read_source()
        results = []
        for audience, path in (("learner", self.learner_path), ("solutions", self.solutions_path)):
            old = nbformat.read(path, as_version=4) if path.exists() else None
            cells = with_hosting(select(source, audience, audience), path.relative_to(ROOT).as_posix())
            nb = new_notebook(source, cells, old)
            empty = keep_outputs(nb, old, (carry or {}).get(audience))
            results.append((path, nb, empty))
        return results


def chapters(selection: list[str] | None = None) -> list[Chapter]:
    found = [Chapter(path) for path in sorted(SOURCE_DIR.glob("*.ipynb"))]
    if selection:
        found = [chapter for chapter in found if any(chapter.name.startswith(key) for key in selection)]
        if not found:
            raise SystemExit(f"no source in {SOURCE_DIR.relative_to(ROOT)}/ matches {selection}")
    return found


def text_of(nb: nbformat.NotebookNode) -> str:
    """Exactly what nbformat.write (and so make_outputs) writes."""
    text = nbformat.writes(nb)
    return text if text.endswith("\n") else text + "\n"


def comparable(nb: nbformat.NotebookNode) -> dict:
    """What must agree between a committed generated notebook and its source: not outputs."""
    metadata = {key: value for key, value in nb.metadata.items() if key not in ("language_info", "widgets")}
    cells = [(cell.get("id"), cell.cell_type, cell.source, dict(cell.metadata)) for cell in nb.cells]
    return {"metadata": metadata, "cells": cells}


def out_of_date(selection: list[str] | None = None) -> list[str]:
    """One line per committed generated notebook that differs from what its source gives."""
    problems = []
    for chapter in chapters(selection):
        for path, nb, _ in chapter.build():
            name = path.relative_to(ROOT)
            if not path.exists():
                problems.append(f"{name}: missing")
                continue
            committed, expected = comparable(nbformat.read(path, as_version=4)), comparable(nb)
            if committed["metadata"] != expected["metadata"]:
                problems.append(f"{name}: notebook metadata differs from {chapter.source_path.name}")
            for number, (ours, theirs) in enumerate(zip(expected["cells"], committed["cells"])):
                if ours != theirs:
                    problems.append(f"{name}: cell {number} (id {ours[0]}) differs from the source")
                    break
            else:
                if len(expected["cells"]) != len(committed["cells"]):
                    problems.append(f"{name}: {len(committed['cells'])} cells, the source gives {len(expected['cells'])}")
    return problems


def write(selection: list[str] | None = None) -> list[Path]:
    """Write every generated notebook that changed; return those that need `make_outputs`."""
    rerun = []
    for chapter in chapters(selection):
        for path, nb, empty in chapter.build():
            text = text_of(nb)
            name = path.relative_to(ROOT)
            if path.exists() and path.read_text(encoding="utf-8") == text:
                print(f"{name}: up to date")
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            print(f"{name}: written" + (f", {len(empty)} code cells without outputs ({', '.join(empty)})" if empty else ""))
            if empty:
                rerun.append(path)
    return rerun


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("chapters", nargs="*", help="chapter numbers or names (default: every source)")
    parser.add_argument("--check", action="store_true", help="only check that the committed notebooks are up to date")
    args = parser.parse_args(argv)
    try:
        if args.check:
            problems = out_of_date(args.chapters)
            for line in problems:
                print(line)
            if problems:
                print("out of date: run `make notebooks` (python scripts/build_notebooks.py), then make_outputs "
                      "on the notebooks it names")
            return 1 if problems else 0
        rerun = write(args.chapters)
    except SourceError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if rerun:
        paths = " ".join(str(path.relative_to(ROOT)) for path in rerun)
        print(f"cells changed: run  .venv/bin/python scripts/make_outputs.py {paths}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
