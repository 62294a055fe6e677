"""One source per chapter (scripts/build_notebooks.py): the committed notebooks are up to date, the build
is deterministic and keeps outputs, and each marker, tag and self-check rule does what it says."""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import build_notebooks as bn  # noqa: E402
import convert_chapter  # noqa: E402

EXERCISE = '''\
def f(x):
    ### BEGIN SOLUTION
    return 2 * x
    ### STARTER: return None  # your code here
    ### END SOLUTION


assert course_utils.check_function(f, lambda x: 2 * x, examples=[(1,), (2,)],
                                   name="f")
### BEGIN HIDDEN TESTS
assert f(10) == 20
### END HIDDEN TESTS
### BEGIN EXPLANATION
print(f(3))
### END EXPLANATION'''


def test_committed_notebooks_are_up_to_date_with_their_sources():
    assert bn.chapters(), "no chapter source in authoring/"
    problems = bn.out_of_date()
    assert not problems, "\n".join(problems) + "\nrun `make notebooks` (then make_outputs on what it names)"


def test_building_again_changes_no_byte():
    for chapter in bn.chapters():
        first = [bn.text_of(nb) for _, nb, _ in chapter.build()]
        second = [bn.text_of(nb) for _, nb, _ in chapter.build()]
        assert first == second
        for (path, _, empty), text in zip(chapter.build(), first):
            assert text == path.read_text(encoding="utf-8"), f"{path}: `make notebooks` would rewrite it"
            assert empty == [], f"{path}: cells without stored outputs: {empty}"


def test_each_flavour_of_an_exercise_cell():
    assert bn.render(EXERCISE, "learner") == '''\
def f(x):
    return None  # your code here


course_utils.check_function(f, lambda x: 2 * x, examples=[(1,), (2,)],
                            name="f");'''
    assert bn.render(EXERCISE, "solutions") == '''\
def f(x):
    return 2 * x


assert course_utils.check_function(f, lambda x: 2 * x, examples=[(1,), (2,)],
                                   name="f")
print(f(3))'''
    assignment = bn.render(EXERCISE, "assignment")
    assert "    ### BEGIN SOLUTION\n    return 2 * x\n    ### STARTER: return None  # your code here\n" in assignment
    assert "### BEGIN HIDDEN TESTS\nassert f(10) == 20\n### END HIDDEN TESTS" in assignment
    assert "print(f(3))" not in assignment


def test_default_starter_and_where_the_semicolon_goes():
    cell = '''\
### BEGIN SOLUTION
answer = 42
### END SOLUTION
for value in (answer,):
    assert course_utils.check_answer(value, 42)
assert course_utils.check_answer(  # a hanging indent stays where it is
    answer, 42,
)  # done'''
    assert bn.render(cell, "learner") == '''\
raise NotImplementedError  # your code here
for value in (answer,):
    course_utils.check_answer(value, 42)
course_utils.check_answer(  # a hanging indent stays where it is
    answer, 42,
);  # done'''


@pytest.mark.parametrize("learner", [
    'course_utils.check_tensor(a, b, name="a");',
    'x = 1\ncourse_utils.check_function(f, g,\n                            examples=[(1,)])\ny = 2',
    'if ok:\n    course_utils.check_answer(a, 1,\n                              hint="\u00e9t\u00e9 \u81ea\u5df1\u6ce8\u610f")',
])
def test_learner_and_solution_checks_are_inverse(learner):
    solution = bn.checks_for_solutions(learner)
    assert "assert course_utils.check_" in solution and ";" not in solution
    assert bn.checks_for_learners(solution) == learner


@pytest.mark.parametrize("text, message", [
    ("### BEGIN SOLUTION\nx = 1", "not closed"),
    ("### BEGIN SOLUTION\n### BEGIN EXPLANATION\n### END EXPLANATION\n### END SOLUTION", "do not nest"),
    ("x = 1\n### END SOLUTION", "outside"),
    ("x = 1  ### BEGIN SOLUTION", "looks like a marker"),
    ("### STARTER: x = None", "outside"),
])
def test_misplaced_markers_are_errors(text, message):
    with pytest.raises(bn.SourceError, match=message):
        bn.render(text, "learner")


def source_notebook(*cells) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook(cells=list(cells))
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def test_tags_choose_the_notebooks_and_outputs_survive_unchanged_cells(tmp_path, monkeypatch):
    monkeypatch.setattr(bn, "SOURCE_DIR", tmp_path / "authoring")
    monkeypatch.setattr(bn, "LEARNER_DIR", tmp_path / "notebooks")
    monkeypatch.setattr(bn, "SOLUTIONS_DIR", tmp_path / "notebooks" / "solutions")
    monkeypatch.setattr(bn, "ROOT", tmp_path)
    bn.SOURCE_DIR.mkdir()
    tags = lambda *names: {"tags": list(names)}  # noqa: E731
    source = source_notebook(
        nbformat.v4.new_markdown_cell("note", id="note", metadata=tags("source-only")),
        nbformat.v4.new_markdown_cell("# Solutions · 09", id="sol-title", metadata=tags("solutions")),
        nbformat.v4.new_markdown_cell("# 09 · Test\n\nIntro.", id="title"),
        nbformat.v4.new_code_cell("print(1)", id="lesson", metadata=tags("nbval-ignore-output")),
        nbformat.v4.new_code_cell("print(2)", id="shared", metadata=tags("learner", "solutions")),
        nbformat.v4.new_code_cell(EXERCISE, id="exercise", metadata={**tags("learner", "solutions", "assignment"),
                                                                      "course": {"points": 2}}),
    )
    nbformat.write(source, bn.SOURCE_DIR / "09_test.ipynb")
    assert bn.write() == [bn.LEARNER_DIR / "09_test.ipynb", bn.SOLUTIONS_DIR / "09_test.ipynb"]
    learner = nbformat.read(bn.LEARNER_DIR / "09_test.ipynb", as_version=4)
    solutions = nbformat.read(bn.SOLUTIONS_DIR / "09_test.ipynb", as_version=4)
    assert [c.id for c in learner.cells] == ["title", bn.COLAB_CELL_ID, "lesson", "shared", "exercise"]
    assert [c.id for c in solutions.cells] == ["sol-title", bn.COLAB_CELL_ID, "shared", "exercise"]
    assert learner.cells[2].metadata == {"tags": ["nbval-ignore-output"]} and solutions.cells[3].metadata == {}
    if bn.REPOSITORY is None:  # unpublished: the title as written, no link that leads nowhere
        assert learner.cells[0].source == "# 09 · Test\n\nIntro."
    else:
        owner_repo = bn.REPOSITORY.removeprefix("https://github.com/")
        assert learner.cells[0].source.startswith("# 09 · Test\n\n[Open in Colab](https://colab.research.google.com/"
                                                  f"github/{owner_repo}/blob/{bn.RELEASE_TAG}/")
        assert "notebooks/09_test.ipynb)" in learner.cells[0].source and learner.cells[0].source.endswith("\n\nIntro.")

    # as if make_outputs had run: then the exercise changes, the other cells keep their outputs
    for cell in learner.cells[2:]:
        cell.outputs = [nbformat.v4.new_output("stream", text=f"output of {cell.id}\n")]
    nbformat.write(learner, bn.LEARNER_DIR / "09_test.ipynb")
    source.cells[-1].source = source.cells[-1].source.replace("return 2 * x", "return x + x")  # the solution only
    nbformat.write(source, bn.SOURCE_DIR / "09_test.ipynb")
    assert bn.out_of_date() == ["notebooks/solutions/09_test.ipynb: cell 3 (id exercise) differs from the source"]
    bn.write()
    learner = nbformat.read(bn.LEARNER_DIR / "09_test.ipynb", as_version=4)
    kept = {cell.id: [o.get("text") for o in cell.outputs] for cell in learner.cells if cell.cell_type == "code"}
    assert kept == {bn.COLAB_CELL_ID: [], "lesson": ["output of lesson\n"], "shared": ["output of shared\n"],
                    "exercise": ["output of exercise\n"]}  # the learner's exercise cell did not change
    assert bn.out_of_date() == []


@pytest.mark.parametrize("cell, message", [
    (nbformat.v4.new_code_cell(EXERCISE, id="e"), "must also be tagged"),
    (nbformat.v4.new_code_cell("### BEGIN EXPLANATION\nx\n### END EXPLANATION", id="e"), "belong in an exercise"),
])
def test_invalid_sources_are_refused(cell, message):
    with pytest.raises(bn.SourceError, match=message):
        bn.validate(source_notebook(nbformat.v4.new_markdown_cell("# t", id="t"), cell), "09_test.ipynb")


@pytest.mark.parametrize("chapter", [chapter.name for chapter in bn.chapters()])
def test_the_converter_gives_back_the_committed_notebooks(chapter):
    """Converting the generated pair again rebuilds the same cells: the converter loses nothing of a chapter."""
    source, _, _ = convert_chapter.convert(chapter)
    for audience, directory in (("learner", bn.LEARNER_DIR), ("solutions", bn.SOLUTIONS_DIR)):
        committed = nbformat.read(directory / f"{chapter}.ipynb", as_version=4)
        rebuilt = bn.with_hosting(bn.select(source, audience, audience), f"notebooks/{chapter}.ipynb")
        assert [(c.cell_type, c.source) for c in bn.without_hosting(nbformat.v4.new_notebook(cells=rebuilt)).cells] \
            == [(c.cell_type, c.source) for c in bn.without_hosting(committed).cells]


@pytest.mark.parametrize("repository", [None, "https://github.com/OWNER/transformers-course"])
def test_hosting_links_and_install_cell_follow_repository(monkeypatch, repository):
    monkeypatch.setattr(bn, "REPOSITORY", repository)
    title = nbformat.v4.new_markdown_cell("# 09 · Test\n\nIntro.", id="title")
    cells = bn.with_hosting([title, nbformat.v4.new_code_cell("print(1)", id="lesson")], "notebooks/09_test.ipynb")
    assert [cell.id for cell in cells] == ["title", bn.COLAB_CELL_ID, "lesson"]
    install = cells[1].source
    if repository is None:
        assert cells[0].source == "# 09 · Test\n\nIntro." and "git+" not in install and "make lab" in install
    else:
        assert cells[0].source == (
            "# 09 · Test\n\n[Open in Colab](https://colab.research.google.com/github/OWNER/transformers-course/blob/"
            f"{bn.RELEASE_TAG}/notebooks/09_test.ipynb) · [Open in Kaggle](https://www.kaggle.com/kernels/welcome?"
            f"src=https://github.com/OWNER/transformers-course/blob/{bn.RELEASE_TAG}/notebooks/09_test.ipynb) "
            "(the first code cell installs the course package there)\n\nIntro.")
        assert f'"git+{repository}@{bn.RELEASE_TAG}"' in install
