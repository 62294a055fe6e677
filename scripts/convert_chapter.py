"""Make the single source of a chapter from its two hand-written notebooks (once per chapter).

    python scripts/convert_chapter.py 03_gpt2_generation_features [--force]

reads notebooks/NN_name.ipynb and notebooks/solutions/NN_name.ipynb and writes

- authoring/NN_name.ipynb, the source (see scripts/build_notebooks.py for its tags and markers):
  a note for authors, an assignment title, the solutions notebook's title and setup cell (tagged
  `solutions`, the setup also `assignment`), then the learner notebook's cells in order, each
  exercise cell merged with its solution cell, the other solutions cells just before the exercise
  they explain (tagged `solutions`);
- the two notebooks again, generated from that source, with their stored outputs carried over.

An exercise cell is a learner code cell with a starter line (`# your code here`, `# your answer`
or `raise NotImplementedError`); its solution cell is the next solutions code cell that defines
one of the names the starter lines sit in. Merging compares the two line by line, after turning
the learner's bare `course_utils.check_...(...)` calls into asserts: lines around a starter that
differ become a solution region (with `### STARTER:` lines unless the starter is the default one),
solution-only lines elsewhere an explanation region. Where the two differ in other lines the
learner's lines win (the solutions notebook then shows them too) and the script says so.

It ends with a report: every place that needs a look, and every cell where a rebuilt notebook
differs from the hand-written one (besides the Colab cell and the links under the title). Then:
read the source, move what the report lists, add hidden tests and points where the self-checks
are weak (docs/teaching.md), `make notebooks`, and strict nbval on both notebooks; run
`scripts/make_outputs.py` on a notebook whose cells changed.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import re
import sys
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent))
import build_notebooks as bn  # noqa: E402

STARTER_LINE = re.compile(r"#\s*your (code|answer)|raise NotImplementedError", re.IGNORECASE)
NOTE = """\
**Source of chapter {name}: edit this file, not the notebooks generated from it.**

`make notebooks` writes `notebooks/{name}.ipynb` (cells without a notebook tag, and those tagged
`learner`) and `notebooks/solutions/{name}.ipynb` (cells tagged `solutions`); `make classroom` builds
the nbgrader assignment (cells tagged `assignment`). In exercise cells, `### BEGIN SOLUTION` /
`### END SOLUTION` mark the answer (learners get the `### STARTER:` lines), `### BEGIN EXPLANATION`
lines are for the solutions notebook only, `### BEGIN HIDDEN TESTS` lines for grading only. The
rules: scripts/build_notebooks.py and docs/teaching.md."""
ASSIGNMENT_TITLE = """\
# Assignment · {title}

The exercises of the course notebook `{name}.ipynb`, to hand in. Write your answer in each
exercise's first cell, where it says `# your code here`; the locked cell after it checks it, as the
course notebook's self-checks do (a ✅, or a hint and an error). When your work is graded, more
checks may run. Before you submit: *Kernel → Restart Kernel and Run All Cells*, and check that every
answer runs."""


def indentation(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def defined_names(text: str, numbers: list[int]) -> set[str]:
    """Names (def, class, assignment targets) of the top-level statements holding the given lines."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return set()
    names = set()
    for node in tree.body:
        if not any(node.lineno - 1 <= number <= node.end_lineno - 1 for number in numbers):
            continue
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {n.id for target in targets for n in ast.walk(target) if isinstance(n, ast.Name)}
    return names


def top_level_names(text: str) -> set[str]:
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return set()
    return defined_names(text, list(range(len(text.split("\n")))))


def region(kind_begin: str, kind_end: str, lines: list[str], starter: list[str] | None = None) -> list[str]:
    body = [line for line in lines]
    nonblank = [line for line in lines + (starter or []) if line.strip()]
    indent = " " * min((indentation(line) for line in nonblank), default=0)
    out = [indent + kind_begin, *body]
    for line in starter or []:
        out.append(indent + bn.STARTER + (" " + line[len(indent):] if line.strip() else ""))
    return out + [indent + kind_end]


def merge(learner: str, solution: str, notes: list[str], where: str) -> str:
    """One exercise cell from the learner's and the solution's versions (see the module docstring)."""
    ours = bn.checks_for_solutions(learner).split("\n")
    theirs = solution.split("\n")
    merged: list[str] = []
    matcher = difflib.SequenceMatcher(None, ours, theirs, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        mine, reference = ours[i1:i2], theirs[j1:j2]
        if tag == "equal":
            merged += mine
        elif any(STARTER_LINE.search(line) for line in mine):
            default = len(mine) == 1 and mine[0].strip() == bn.DEFAULT_STARTER
            indent = " " * min((indentation(line) for line in mine + reference if line.strip()), default=0)
            starter = [] if default and mine[0].startswith(indent + bn.DEFAULT_STARTER) else mine
            merged += region(bn.BEGIN_SOLUTION, bn.END_SOLUTION, reference, starter)
        elif tag == "insert":
            merged += region(bn.BEGIN_EXPLANATION, bn.END_EXPLANATION, reference)
        else:
            merged += mine
            notes.append(f"{where}: the learner's lines kept, the solution's dropped; move what the solutions "
                         "notebook needs into an explanation region or a `solutions` cell:\n"
                         + "".join(f"      learner : {line}\n" for line in mine)
                         + "".join(f"      solution: {line}\n" for line in reference))
    text = "\n".join(merged)
    if bn.render(text, "learner") != learner:
        notes.append(f"{where}: the merged cell does not give back the learner's cell exactly; compare them")
    return text


def unique_id(wanted: str, taken: set[str]) -> str:
    candidate, number = wanted, 1
    while candidate in taken:
        candidate = f"sol-{wanted}" if number == 1 else f"sol{number}-{wanted}"
        number += 1
    taken.add(candidate)
    return candidate


def tagged(cell: nbformat.NotebookNode, *tags: str) -> nbformat.NotebookNode:
    cell = nbformat.from_dict(dict(cell))
    existing = [tag for tag in cell.metadata.get("tags", []) if tag not in bn.COURSE_TAGS]
    if tags or existing:
        cell.metadata["tags"] = [*tags, *existing]
    if cell.cell_type == "code":
        cell.outputs, cell.execution_count = [], None
    return cell


def convert(name: str) -> tuple[nbformat.NotebookNode, dict, list[str]]:
    """The source notebook, the outputs to carry per audience, and the notes for the author."""
    learner = bn.without_hosting(nbformat.read(bn.LEARNER_DIR / f"{name}.ipynb", as_version=4))
    solutions = bn.without_hosting(nbformat.read(bn.SOLUTIONS_DIR / f"{name}.ipynb", as_version=4))
    notes: list[str] = []
    taken = {cell.id for cell in learner.cells}
    carry: dict[str, dict[str, nbformat.NotebookNode]] = {"learner": {}, "solutions": {}}

    matches: dict[int, int] = {}  # learner cell index -> solutions cell index
    position = 0
    for index, cell in enumerate(learner.cells):
        if cell.cell_type != "code":
            continue
        lines = cell.source.split("\n")
        starters = [number for number, line in enumerate(lines) if STARTER_LINE.search(line)]
        if not starters:
            continue
        names = defined_names(cell.source, starters)
        found = next((j for j in range(position, len(solutions.cells)) if solutions.cells[j].cell_type == "code"
                      and names & top_level_names(solutions.cells[j].source)), None)
        if found is None:
            notes.append(f"learner cell {index} (id {cell.id}): no solutions cell defines {sorted(names)}; "
                         "left as a lesson cell: write its solution region by hand")
            continue
        matches[index], position = found, found + 1

    solution_ids: dict[int, str] = {}
    for j, cell in enumerate(solutions.cells):
        if j not in matches.values():
            solution_ids[j] = unique_id(cell.id, taken)
    lesson_text = {cell.source for cell in learner.cells}

    def solutions_only(j: int, setup: bool = False) -> nbformat.NotebookNode:
        cell = solutions.cells[j]
        if cell.source in lesson_text and cell.cell_type == "code":
            notes.append(f"solutions cell {j} (id {cell.id}) repeats a learner cell word for word: tag that cell "
                         "`solutions` too and delete this one (mind the order of the cells)")
        new = tagged(cell, "solutions", "assignment") if setup else tagged(cell, "solutions")
        new.id = solution_ids[j]
        if cell.cell_type == "code":
            carry["solutions"][new.id] = cell
        return new

    first_match = min(matches.values(), default=len(solutions.cells))
    title = learner.cells[0].source.split("\n", 1)[0].lstrip("# ").strip()
    cells = [nbformat.v4.new_markdown_cell(NOTE.format(name=name), id=unique_id("source-note", taken),
                                           metadata={"tags": [bn.SOURCE_ONLY]}),
             nbformat.v4.new_markdown_cell(ASSIGNMENT_TITLE.format(title=title, name=name),
                                           id=unique_id("assignment-title", taken), metadata={"tags": ["assignment"]})]
    setup = next((j for j in range(first_match) if solutions.cells[j].cell_type == "code"), None)
    if setup is None:
        notes.append("the solutions notebook has no code cell before its first exercise: the assignment has no "
                     "setup; tag one `assignment`")
    previous = 0 if setup is None else setup + 1  # its title and setup open the source; the rest is in place
    cells += [solutions_only(j, setup=(j == setup)) for j in range(previous)]
    exercise_indices = sorted(matches)
    prompts = {index - 1 for index in exercise_indices if index > 0 and learner.cells[index - 1].cell_type == "markdown"}
    after_exercise: int | None = None  # where the cells that explain the previous exercise go

    def place(block: list[int]) -> None:
        """Solutions cells up to the next heading follow the previous exercise; the rest come here."""
        heading = next((n for n, k in enumerate(block) if solutions.cells[k].cell_type == "markdown"
                        and solutions.cells[k].source.startswith("#")), len(block))
        if after_exercise is None:
            heading = 0
        else:
            cells[after_exercise:after_exercise] = [solutions_only(k) for k in block[:heading]]
        cells.extend(solutions_only(k) for k in block[heading:])

    for index, cell in enumerate(learner.cells):
        if index in matches:
            j = matches[index]
            place(list(range(previous, j)))
            previous = j + 1
            merged = merge(cell.source, solutions.cells[j].source, notes, f"exercise cell {index} (id {cell.id})")
            new = tagged(cell, "learner", "solutions", "assignment")
            new.source = merged
            cells.append(new)
            after_exercise = len(cells)
            carry["solutions"][new.id] = solutions.cells[j]
        elif index in prompts:
            cells.append(tagged(cell, "learner", "assignment"))
        else:
            cells.append(tagged(cell))
    place(list(range(previous, len(solutions.cells))))

    source = nbformat.v4.new_notebook(cells=cells, metadata=nbformat.from_dict(dict(learner.metadata)))
    source.nbformat, source.nbformat_minor = 4, 5
    return source, carry, notes


def differences(original: nbformat.NotebookNode, rebuilt: nbformat.NotebookNode) -> list[str]:
    """Cells of the rebuilt notebook that differ from the hand-written one, besides the deliberate additions."""
    texts = [(cell.cell_type, cell.source) for cell in bn.without_hosting(rebuilt).cells]
    before = [(cell.cell_type, cell.source) for cell in bn.without_hosting(original).cells]
    found = []
    matcher = difflib.SequenceMatcher(None, before, texts, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag != "equal":
            found.append(f"  {tag}: hand-written cells {i1}..{i2 - 1} -> rebuilt cells {j1}..{j2 - 1}")
            for (_, old), (_, new) in zip(before[i1:i2], texts[j1:j2]):
                diff = difflib.unified_diff(old.split("\n"), new.split("\n"), "hand-written", "rebuilt", lineterm="", n=1)
                found += ["      " + line for line in diff]
    return found


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("chapter", help="the notebook's name, e.g. 03_gpt2_generation_features")
    parser.add_argument("--force", action="store_true", help="overwrite an existing source")
    args = parser.parse_args(argv)
    name = Path(args.chapter).stem
    target = bn.SOURCE_DIR / f"{name}.ipynb"
    if target.exists() and not args.force:
        print(f"{target.relative_to(bn.ROOT)} exists: edit it, or pass --force to convert again", file=sys.stderr)
        return 2
    source, carry, notes = convert(name)
    originals = {"learner": nbformat.read(bn.LEARNER_DIR / f"{name}.ipynb", as_version=4),
                 "solutions": nbformat.read(bn.SOLUTIONS_DIR / f"{name}.ipynb", as_version=4)}
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(source, target)
    print(f"wrote {target.relative_to(bn.ROOT)}: {len(source.cells)} cells")
    for path, nb, empty in bn.Chapter(target).build(carry):
        audience = "solutions" if path.parent == bn.SOLUTIONS_DIR else "learner"
        changed = differences(originals[audience], nb)
        path.write_text(bn.text_of(nb), encoding="utf-8")
        print(f"wrote {path.relative_to(bn.ROOT)}: " + ("same cells as before" if not changed else "cells differ:"))
        print("\n".join(changed)) if changed else None
        if empty:
            print(f"  code cells without outputs: {', '.join(empty)}")
    for note in notes:
        print(f"look: {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
