"""nbgrader end to end, offline: generate, submit, autograde, read the gradebook.

Two students hand in: `solved` the release with the reference answers filled in, `untouched` the
release as it was handed out. Full marks for the first and zero for the second, each test cell
failing for the reason it should, show that the assignment, its tests and its points are right.

Every `make test` grades chapter 01 (about 20 s); `COURSE_CLASSROOM_E2E="01 05"` (chapter numbers or
names) or `COURSE_CLASSROOM_E2E=all` grades others too, as after converting or changing a chapter.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import build_notebooks as bn  # noqa: E402
import classroom  # noqa: E402

pytest.importorskip("nbgrader", reason="nbgrader is pinned in requirements.txt: run `make setup`")
# nbgrader 0.9.6 with SQLAlchemy 2.x: autoflush notes from nbgrader's own queries, not ours
pytestmark = pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SAWarning")

MARKERS = (bn.BEGIN_SOLUTION, bn.END_SOLUTION, bn.STARTER)
# What each chapter's assignment is worth and how many of its test cells have hidden tests (docs/teaching.md)
EXPECTED = {
    "01_self_attention": {"points": 9, "hidden": 2},
    "02_decoder_masking": {"points": 12, "hidden": 2},
    "03_gpt2_generation_features": {"points": 10, "hidden": 4},
    "04_bert_mlm": {"points": 9, "hidden": 5},
    "05_distilbert_imdb": {"points": 9, "hidden": 3},
}


def e2e_chapters() -> list[str]:
    wanted = os.environ.get("COURSE_CLASSROOM_E2E", "01").split()
    names = [chapter.name for chapter in bn.chapters()]
    if wanted == ["all"]:
        return names
    return [name for name in names if any(name.startswith(key) for key in wanted)]


def solved(release: nbformat.NotebookNode, source: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The release with every answer cell holding the reference answer, as a student who solved it all."""
    answers = {cell.metadata["nbgrader"]["grade_id"]: cell.source for cell in source.cells
               if cell.metadata.get("nbgrader", {}).get("solution")}
    nb = nbformat.from_dict(release)
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in answers:
            cell.source = "\n".join(line for line in answers[grade_id].split("\n")
                                    if not line.strip().startswith(MARKERS))
    return nb


def errors(nb: nbformat.NotebookNode, grade_id: str) -> list[str]:
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)
    return [output["ename"] for output in cell.get("outputs", []) if output["output_type"] == "error"]


@pytest.fixture(scope="module", params=e2e_chapters())
def graded(request, tmp_path_factory):
    chapter = request.param
    course = tmp_path_factory.mktemp("classroom")
    assert classroom.build(course, [chapter]) == [chapter]
    source = nbformat.read(course / "source" / chapter / f"{chapter}.ipynb", as_version=4)
    release_path = course / "release" / chapter / f"{chapter}.ipynb"
    release = nbformat.read(release_path, as_version=4)
    for student, nb in (("solved", solved(release, source)), ("untouched", None)):
        folder = course / "submitted" / student / chapter
        folder.mkdir(parents=True)
        if nb is None:
            shutil.copy(release_path, folder / release_path.name)
        else:
            nbformat.write(nb, folder / release_path.name)
    with classroom.venv_on_path():  # conftest applied the canonical offline environment: the kernels inherit it
        classroom.succeeded(classroom.grader(course).autograde(chapter, "*"))
    return chapter, course, source, release


def handed_out(answer: str) -> str:
    """A teacher's answer cell as students must get it: each solution region replaced by its starter."""
    lines = []
    for part in bn.regions(answer):
        if part.kind == "solution":
            lines += part.starter or [part.indent + bn.DEFAULT_STARTER]
        else:
            lines += part.lines
    return "\n".join(lines)


def without_hidden(tests: str) -> str:
    return "\n".join(part for part in (
        "\n".join(region.lines) for region in bn.regions(tests) if region.kind == "plain") if part)


def test_release_has_no_solutions_and_no_hidden_tests(graded):
    chapter, _, source, release = graded
    text = "\n".join(cell.source for cell in release.cells)
    for marker in ("### BEGIN", "### END", "### STARTER"):
        assert marker not in text
    teacher = {cell.id: cell.source for cell in source.cells}
    answers = [cell for cell in release.cells if cell.metadata["nbgrader"]["solution"]]
    tests = [cell for cell in release.cells if cell.metadata["nbgrader"]["grade"]]
    assert answers and len(answers) == len(tests) and all(cell.metadata["nbgrader"]["locked"] for cell in tests)
    for cell in answers:  # the learner notebook's starters, not the reference answers
        assert cell.source == handed_out(teacher[cell.id]), cell.id
    for cell in tests:  # the public checks only; the teacher's version keeps the hidden tests
        assert cell.source == without_hidden(teacher[cell.id]), cell.id
    assert sum(bn.BEGIN_HIDDEN in teacher[cell.id] for cell in tests) == EXPECTED[chapter]["hidden"]
    if chapter == "01_self_attention":
        assert "no_softmax" in teacher["7f644bf8-tests"] and "no_softmax" not in text
        assert any("A_cold = None  # your code here" in cell.source for cell in answers)


def test_solved_gets_full_marks_untouched_gets_zero(graded):
    from nbgrader.api import Gradebook

    chapter, course, _, release = graded
    points = {cell.metadata["nbgrader"]["grade_id"]: cell.metadata["nbgrader"]["points"]
              for cell in release.cells if cell.metadata["nbgrader"]["grade"]}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        full = gradebook.find_submission(chapter, "solved")
        zero = gradebook.find_submission(chapter, "untouched")
        assert full.max_score == sum(points.values()) == EXPECTED[chapter]["points"]
        assert full.score == full.max_score, [(g.name, g.score, g.max_score) for g in full.notebooks[0].grades]
        assert zero.score == 0, [(g.name, g.score, g.max_score) for g in zero.notebooks[0].grades]

    solved_nb = nbformat.read(course / "autograded" / "solved" / chapter / f"{chapter}.ipynb", as_version=4)
    untouched = nbformat.read(course / "autograded" / "untouched" / chapter / f"{chapter}.ipynb", as_version=4)
    for cell in solved_nb.cells + untouched.cells:  # the setup ran: zero marks are not a broken environment
        if not cell.metadata.get("nbgrader", {}).get("grade"):
            assert not [o for o in cell.get("outputs", []) if o["output_type"] == "error"], cell.source[:200]
    for grade_id in points:
        assert errors(solved_nb, grade_id) == []
        # each test fails on the starter's answer (None), not on a NameError of the test itself
        assert errors(untouched, grade_id) == ["AssertionError"], grade_id


@pytest.mark.parametrize("chapter", bn.chapters(), ids=lambda chapter: chapter.name)
def test_every_chapter_makes_a_valid_assignment(chapter):
    import ast

    from nbgrader.nbgraderformat import MetadataValidator

    nb = classroom.assignment(chapter)
    MetadataValidator().validate_nb(nb)
    exercises = [cell for cell in chapter.read_source().cells if cell.cell_type == "code"
                 and "assignment" in bn.audiences(cell) and bn.is_exercise(cell.source)]
    answers = [cell for cell in nb.cells if cell.metadata["nbgrader"]["solution"]]
    tests = [cell for cell in nb.cells if cell.metadata["nbgrader"]["grade"]]
    assert len(answers) == len(tests) == len(exercises) > 0
    for answer, test in zip(answers, tests):
        assert bn.BEGIN_SOLUTION in answer.source and bn.BEGIN_SOLUTION not in test.source
        assert "assert course_utils.check_" in test.source and bn.BEGIN_EXPLANATION not in test.source
        ast.parse(answer.source), ast.parse(test.source)
    others = [cell for cell in nb.cells if cell not in answers + tests]
    assert all(cell.metadata["nbgrader"]["locked"] for cell in others)
    assert sum(cell.metadata["nbgrader"]["points"] for cell in tests) == EXPECTED[chapter.name]["points"]
    assert sum(bn.BEGIN_HIDDEN in cell.source for cell in tests) == EXPECTED[chapter.name]["hidden"]


def test_an_exercise_without_a_check_after_its_answer_is_refused():
    with pytest.raises(bn.SourceError, match="nothing to grade"):
        classroom.split_exercise("### BEGIN SOLUTION\nx = 1\n### END SOLUTION\n# no check", "cell 1")
    answer, tests = classroom.split_exercise(
        "def f():\n    ### BEGIN SOLUTION\n    y = 1\n    ### END SOLUTION\n    return y\n\n\nassert f() == 1", "cell 2")
    assert answer.endswith("    return y") and tests == "assert f() == 1"
