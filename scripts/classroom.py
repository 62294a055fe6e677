"""Build an nbgrader course directory from the chapter sources (`make classroom`).

    python scripts/classroom.py                  # every chapter in authoring/, into build/classroom/
    python scripts/classroom.py 01 --root DIR    # some chapters, somewhere else

writes, under build/classroom/ (git-ignored):

    nbgrader_config.py                           course id, the starter stub, execution time-outs
    source/NN_name/NN_name.ipynb                 one assignment per chapter (the teacher's version)
    release/NN_name/NN_name.ipynb                what students get (`nbgrader generate_assignment`)
    gradebook.db                                 nbgrader's database (assignments, later students and grades)

and leaves alone what a class already produced there (submitted/, autograded/, feedback/, the grades in
gradebook.db). An assignment holds the cells of the chapter's source tagged `assignment`: a title, the
solutions notebook's setup cell (so grading does not re-run the lesson), the exercise prompts, and each
exercise cell split in two: the answer cell (the student's code; nbgrader replaces the solution region
by `raise NotImplementedError  # your code here`) and a locked, autograded test cell with the
self-checks, `assert course_utils.check_...(...)`, and the hidden tests, worth the exercise cell's
`metadata.course.points` (default 1). Every other cell is locked (read-only, restored when grading).

Grading, from the course directory, with the course's virtual environment on PATH (nbgrader runs
`alembic` by name): see docs/teaching.md.
"""

from __future__ import annotations

import argparse
import ast
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent))
import build_notebooks as bn  # noqa: E402

CLASSROOM = bn.ROOT / "build" / "classroom"
COURSE_ID = "transformers-course"
CODE_STUB = bn.DEFAULT_STARTER
CONFIG = f'''\
# nbgrader configuration of the course's classroom, written by scripts/classroom.py (`make classroom`).
import re

from nbgrader.converters import GenerateAssignment
from nbgrader.preprocessors import ClearSolutions


class ClearSolutionsWithStarters(ClearSolutions):
    """ClearSolutions, but a solution region's `{bn.STARTER} code` lines, when it has some, are its stub:
    students get the learner notebook's starter (`my_shapes = [None, None]`), not only the default one."""

    def _replace_solution_region(self, cell, language):
        if cell.cell_type != "code" or "{bn.STARTER}" not in cell.source:
            return super()._replace_solution_region(cell, language)
        out, region = [], None
        for line in cell.source.split("\\n"):
            stripped = line.strip()
            if self.begin_solution_delimeter in line:
                region = (re.match(r"\\s*", line).group(0), [])
            elif self.end_solution_delimeter in line:
                indent, starter = region
                out += starter or [indent + stub for stub in self.code_stub[language].split("\\n")]
                region = None
            elif region is None:
                out.append(line)
            elif stripped.startswith("{bn.STARTER}"):
                code = stripped[len("{bn.STARTER}"):]
                region[1].append(region[0] + (code[1:] if code.startswith(" ") else code))
        if region is not None:
            raise RuntimeError("no end solution statement found")
        cell.source = "\\n".join(out)
        return True


c = get_config()  # noqa: F821 (nbgrader provides it)
c.CourseDirectory.course_id = "{COURSE_ID}"
c.ClearSolutions.code_stub = {{"python": "{CODE_STUB}"}}  # the learner notebooks' default starter
c.GenerateAssignment.preprocessors = [ClearSolutionsWithStarters if step is ClearSolutions else step
                                      for step in GenerateAssignment.class_traits()["preprocessors"].make_dynamic_default()]
c.Execute.timeout = 900  # seconds per cell, as the course's own tests allow
'''


def bin_dir() -> Path:
    """The virtual environment's scripts folder (nbgrader, alembic): the one of this Python."""
    return Path(sys.executable).parent


@contextmanager
def venv_on_path() -> Iterator[None]:
    """The venv's bin/ first on PATH while nbgrader runs: it calls `alembic` by name to set up its database."""
    before = os.environ.get("PATH", "")
    os.environ["PATH"] = os.pathsep.join([str(bin_dir()), before])
    try:
        yield
    finally:
        os.environ["PATH"] = before


def grader(course: Path):
    """nbgrader's Python API on a course directory, configured by its nbgrader_config.py (one process,
    one import of nbgrader, for every step; the command line `nbgrader ...` does the same)."""
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader("nbgrader_config.py", path=str(course)).load_config()
    return NbGraderAPI(coursedir=CourseDirectory(config=config, root=str(course)), config=config)


def succeeded(result: dict) -> str:
    """An NbGraderAPI result's log; raise with nbgrader's own message if the step failed."""
    if not result["success"]:
        raise RuntimeError(f"nbgrader failed:\n{result.get('log', '')}\n{result.get('error', '')}")
    return result.get("log", "")


def nbgrader_metadata(grade_id: str, *, solution: bool = False, grade: bool = False, locked: bool = False,
                      points: float | None = None) -> dict:
    meta = {"grade": grade, "grade_id": grade_id, "locked": locked, "schema_version": 3, "solution": solution,
            "task": False}
    if grade:
        meta["points"] = points
    return meta


def split_exercise(text: str, where: str) -> tuple[str, str]:
    """An exercise cell (assignment flavour) as (answer, tests): cut after the statement of the last solution region."""
    lines = text.split("\n")
    ends = [number for number, line in enumerate(lines) if line.strip() == bn.END_SOLUTION]
    cut = ends[-1]
    for node in ast.parse(text).body:
        if node.lineno - 1 <= cut:
            cut = max(cut, node.end_lineno - 1)
    answer = "\n".join(lines[: cut + 1]).strip("\n")
    tests = "\n".join(lines[cut + 1:]).strip("\n")
    if bn.BEGIN_HIDDEN in answer:
        raise bn.SourceError(f"{where}: hidden tests must come after the last solution region")
    if not any(line.strip() and not line.strip().startswith("#") for line in tests.split("\n")):
        raise bn.SourceError(f"{where}: nothing to grade after the last solution region: add its self-check")
    return answer, tests


def points_of(cell: nbformat.NotebookNode) -> float:
    points = cell.metadata.get("course", {}).get("points", 1)
    if not isinstance(points, (int, float)) or points <= 0:
        raise bn.SourceError(f"cell {cell.id}: metadata.course.points must be a positive number, not {points!r}")
    return points


def assignment(chapter: bn.Chapter) -> nbformat.NotebookNode:
    """The nbgrader source notebook of one chapter (see the module docstring)."""
    source = chapter.read_source()
    cells = []
    for index, cell in enumerate(source.cells):
        if "assignment" not in bn.audiences(cell):
            continue
        where = f"{chapter.source_path.name}, cell {index} (id {cell.id})"
        metadata = bn.generated_metadata(cell)
        if cell.cell_type == "code" and bn.is_exercise(cell.source):
            answer, tests = split_exercise(bn.render(cell.source, "assignment"), where)
            cells.append(nbformat.v4.new_code_cell(answer, id=f"{cell.id}-answer", metadata={
                **metadata, "nbgrader": nbgrader_metadata(f"{cell.id}-answer", solution=True)}))
            cells.append(nbformat.v4.new_code_cell(tests, id=f"{cell.id}-tests", metadata={
                **metadata, "nbgrader": nbgrader_metadata(f"{cell.id}-tests", grade=True, locked=True,
                                                          points=points_of(cell))}))
            continue
        locked = {**metadata, "nbgrader": nbgrader_metadata(cell.id, locked=True)}
        if cell.cell_type == "code":
            cells.append(nbformat.v4.new_code_cell(bn.render(cell.source, "assignment"), id=cell.id, metadata=locked))
        else:
            cells.append(nbformat.from_dict({"cell_type": cell.cell_type, "id": cell.id, "metadata": locked,
                                             "source": cell.source}))
    if not any(cell.metadata["nbgrader"]["grade"] for cell in cells):
        raise bn.SourceError(f"{chapter.source_path.name}: no exercise cell is tagged `assignment`")
    first_code = next((index for index, cell in enumerate(cells) if cell.cell_type == "code"), len(cells))
    cells.insert(first_code, nbformat.v4.new_code_cell(bn.colab_cell_source(), id=bn.COLAB_CELL_ID, metadata={
        "nbgrader": nbgrader_metadata(bn.COLAB_CELL_ID, locked=True)}))
    nb = nbformat.v4.new_notebook(cells=cells, metadata=nbformat.from_dict(dict(source.metadata)))
    nb.nbformat, nb.nbformat_minor = 4, 5
    return nb


def build(root: Path = CLASSROOM, selection: list[str] | None = None, release: bool = True) -> list[str]:
    """Write the course directory under root and generate the releases; return the assignment names."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "nbgrader_config.py").write_text(CONFIG, encoding="utf-8")
    names = []
    for chapter in bn.chapters(selection):
        folder = root / "source" / chapter.name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{chapter.name}.ipynb").write_text(bn.text_of(assignment(chapter)), encoding="utf-8")
        names.append(chapter.name)
    if release:
        with venv_on_path():
            api = grader(root)
            for name in names:
                succeeded(api.generate_assignment(name, force=True))
    return names


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("chapters", nargs="*", help="chapter numbers or names (default: every source)")
    parser.add_argument("--root", type=Path, default=CLASSROOM, help=f"course directory (default: {CLASSROOM})")
    parser.add_argument("--no-release", action="store_true", help="write source/ only, do not run nbgrader")
    args = parser.parse_args(argv)
    try:
        names = build(args.root.resolve(), args.chapters, release=not args.no_release)
    except (bn.SourceError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    root = args.root.resolve()
    print(f"{root}: assignments {', '.join(names)}" + ("" if args.no_release else " (source/ and release/)"))
    print(f"grade, in {root}, with PATH={bin_dir()}:$PATH: see docs/teaching.md "
          "(nbgrader collect or zip_collect, then nbgrader autograde NAME)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
