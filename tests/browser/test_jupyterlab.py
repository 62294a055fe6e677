"""Every notebook as a learner meets it: opened in JupyterLab in Chromium, run with Run All, checked.

Run with `make test-browser` (needs a Chromium: README, 'Browser tests'). Screenshots of
each run notebook go to build/screenshots/ (git-ignored).
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from pathlib import Path

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from tests.browser.conftest import KERNEL, REPO

pytestmark = pytest.mark.browser

NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))  # the course: 01_..., 02_...
SOLUTIONS = REPO / "notebooks" / "solutions" / "01_self_attention.ipynb"
SCREENSHOTS = REPO / "build" / "screenshots"
PHASES: dict[str, float] = {}  # when each phase of the current test ended (time.monotonic())
RUN_TIMEOUT_S = 900  # the nbval cell timeout; a healthy notebook takes well under a minute here
PLOT_CALL = re.compile(r"\b(plot_attention|plot_lines|plot_matrix|plt\.show)\(")
CHECKPOINT_CALL = re.compile(r"checkpoint\(\s*[\"']([^\"']+)[\"']\s*\)")
DATA_CALL = re.compile(r"\bload_imdb\(")

# The notebook panel's state, read from JupyterLab's own models (window.jupyterapp).
STATE_JS = """
(path) => {
  const panel = Array.from(window.jupyterapp.shell.widgets('main')).find(w => w.context && w.context.path === path);
  if (!panel || !panel.content || !panel.content.widgets) { return null; }
  const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
  const code = panel.content.widgets.filter(cell => cell.model.type === 'code');
  return {
    kernel: kernel ? kernel.name : null,
    status: kernel ? kernel.status : null,
    counts: code.map(cell => cell.model.executionCount),
    errors: code.flatMap((cell, i) => {  // the output models' types: no serialising of every image, every second
      const outputs = cell.model.outputs, found = [];
      for (let k = 0; k < outputs.length; k++) {
        const output = outputs.get(k);
        if (output.type === 'error') {
          const error = output.toJSON();
          found.push(`cell ${i}: ${error.ename}: ${error.evalue}`);
        }
      }
      return found;
    }),
    stdin: document.querySelectorAll('.jp-Stdin').length,
  };
}
"""


APP_READY_JS = "() => !!(window.jupyterapp && window.jupyterapp.shell && window.jupyterapp.serviceManager.isReady)"
# Close every open document without the "save your changes?" dialog (a notebook after Run All is dirty).
CLOSE_ALL_JS = """
() => {
  for (const widget of Array.from(window.jupyterapp.shell.widgets('main'))) {
    if (widget.context) { widget.context.model.dirty = false; }
    widget.dispose();
  }
  return document.querySelectorAll('.jp-Dialog').length;
}
"""


def load_lab(page, lab) -> None:
    """Load JupyterLab in `page`, in a fresh workspace (`reset`), and wait until it can open documents."""
    page.goto(f"{lab.url}/lab?token={lab.token}&reset")
    page.wait_for_function(APP_READY_JS, timeout=120_000)
    # A document opened before the workspace is restored can be closed again by the restore (`reset`)
    page.evaluate("async () => { await window.jupyterapp.restored; }")


def open_notebook(page, lab, path: str) -> None:
    """Open `path` (relative to the server root) with JupyterLab's own command and wait for its kernel.

    The page keeps one JupyterLab loaded across the tests of a worker (`lab_app`), as a learner's
    tab does across notebooks: loading the whole application again for every notebook cost
    15-20 s of wall time per test with two notebooks running.
    """
    PHASES.clear()
    PHASES["start"] = time.monotonic()
    page.evaluate("(path) => { window.jupyterapp.commands.execute('docmanager:open', {path, factory: 'Notebook'}); }",
                  path)
    try:
        page.wait_for_function(
            f"() => {{ const s = ({STATE_JS})({path!r}); return s && s.status === 'idle'; }}", timeout=120_000)
    except PlaywrightTimeoutError:
        documents = page.evaluate("() => Array.from(window.jupyterapp.shell.widgets('main')).map(w => w.title.label)")
        raise AssertionError(f"{path}: no idle kernel after 120 s; state {page.evaluate(STATE_JS, path)}, "
                             f"open documents {documents}") from None
    PHASES["opened"] = time.monotonic()


def run_all(page, lab, path: str) -> dict:
    """Clear outputs, run every cell with JupyterLab's Run All command, wait for the kernel to be idle."""
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:clear-all-cell-outputs')")
    page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while True:
        time.sleep(1)
        state = page.evaluate(STATE_JS, path)
        assert state["stdin"] == 0, f"{path}: a cell waits for keyboard input (input()), which Run All never gives"
        finished = all(count is not None for count in state["counts"]) or state["errors"]
        if finished and state["status"] == "idle":
            PHASES["ran"] = time.monotonic()
            return state
        assert time.monotonic() < deadline, f"{path}: still running after {RUN_TIMEOUT_S} s: {state}"


def errors_shown(page) -> int:
    """Tracebacks shown in output areas (JupyterLab renders an error as stderr text, like a warning)."""
    stderr = page.locator(".jp-Notebook .jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
    return sum("Traceback (most recent call last)" in text for text in stderr.all_inner_texts())


def output_lines(page) -> list[str]:
    """Every line of text shown in the notebook's output areas, as rendered."""
    texts = page.locator(".jp-Notebook .jp-OutputArea-output").all_inner_texts()
    return [line.strip() for text in texts for line in text.splitlines()]


def screenshot(page, name: str) -> list[Path]:
    """Full-length screenshots of the notebook (the panel scrolls, not the page), in parts of at most 12,000 px."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for old in SCREENSHOTS.glob(f"{name}*.png"):
        old.unlink()
    page.evaluate("() => window.jupyterapp.shell.collapseLeft && window.jupyterapp.shell.collapseLeft()")
    scroller = ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-WindowedPanel-outer"
    height = page.evaluate(f"() => document.querySelector('{scroller}').scrollHeight")
    part, parts, top = 12_000, [], 0
    while top < height:
        page.set_viewport_size({"width": 1280, "height": min(part, height - top) + 150})
        page.evaluate(f"(top) => {{ document.querySelector('{scroller}').scrollTop = top; }}", top)
        page.wait_for_timeout(300)
        path = SCREENSHOTS / (f"{name}.png" if top == 0 else f"{name}-{len(parts) + 1}.png")
        page.screenshot(path=path)
        parts.append(path)
        top += part
    page.set_viewport_size({"width": 1280, "height": 900})
    PHASES["screenshot"] = time.monotonic()
    return parts


def cell_sources(lab, path: str) -> list[str]:
    """The code cells of the server's copy of `path` (the repository's may change while the tests run)."""
    notebook = json.loads((lab.root / path).read_text())  # plain JSON: nbformat's import costs seconds
    return ["".join(cell["source"]) for cell in notebook["cells"] if cell["cell_type"] == "code"]


@pytest.fixture(scope="session")
def lab_app(browser, browser_context_args, lab):
    """One page per worker with JupyterLab loaded; the network outside 127.0.0.1 is cut."""
    context = browser.new_context(**browser_context_args)
    page = context.new_page()
    page.route(re.compile(r"^(?!https?://127\.0\.0\.1[:/]).*"), lambda route: route.abort())
    load_lab(page, lab)
    yield page
    context.close()


@pytest.fixture
def lab_page(request, lab_app, lab):
    """The worker's JupyterLab page, with no document open; afterwards its documents are closed
    and the kernels stopped, so one notebook's kernel never competes with the next for the CPU."""
    page = lab_app
    start = time.monotonic()
    yield page
    end, marks = time.monotonic(), [("start", start), *PHASES.items()]
    phases = {name: later - earlier for (_, earlier), (name, later) in zip(marks, marks[1:]) if name != "start"}
    phases["checks"] = end - marks[-1][1]
    request.node.user_properties.append(("browser_timing", (end - start, lab.kernel_cpu_seconds(), phases)))
    page.set_viewport_size({"width": 1280, "height": 900})
    try:
        dialogs = page.evaluate(CLOSE_ALL_JS)
    except Exception:  # noqa: BLE001 - a test that failed may leave the page in any state: start afresh
        dialogs = -1
    lab.shutdown_kernels()
    if dialogs:  # a dialog (or a broken page) would get in the next test's way
        load_lab(page, lab)


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_notebook_runs_in_jupyterlab(lab_page, lab, notebook):
    page, path = lab_page, f"notebooks/{notebook.name}"
    open_notebook(page, lab, path)
    state = run_all(page, lab, path)
    screenshot(page, notebook.stem)

    assert state["kernel"] == KERNEL, f"{path} opened with kernel {state['kernel']!r}, not {KERNEL!r}"
    assert not state["errors"], f"{path}: cells raised errors: {state['errors']}"
    assert errors_shown(page) == 0, f"{path}: {errors_shown(page)} tracebacks are shown"
    assert state["counts"] == list(range(1, len(state["counts"]) + 1)), (
        f"{path}: not every cell ran once, in order, in this run: execution counts {state['counts']}")

    sources = cell_sources(lab, path)
    cells = page.locator(".jp-Notebook .jp-Cell.jp-CodeCell")
    assert cells.count() == len(sources), f"{path}: {cells.count()} code cells rendered, {len(sources)} in the file"
    for index, source in enumerate(sources):
        if PLOT_CALL.search(source):
            images = cells.nth(index).locator(".jp-OutputArea-output img")
            assert images.count() >= 1, f"{path} cell {index} draws a figure but shows no image"
            drawn = images.evaluate_all("(imgs) => imgs.every(img => img.complete && img.naturalWidth > 0)")
            assert drawn, f"{path} cell {index}: an image did not load"

    notices = [line for line in output_lines(page) if line.startswith("[course_utils]")]
    repeated = [line for line, times in Counter(notices).items() if times > 1]
    assert not repeated, f"{path}: notices shown more than once: {repeated}"
    names = sorted({name for source in sources for name in CHECKPOINT_CALL.findall(source)})
    for name in names:
        about = [line for line in notices if f"'{name}'" in line]
        assert len(about) == 1, f"{path}: expected one notice about {name!r}, got {about}"
    if any(DATA_CALL.search(source) for source in sources):
        about_data = [line for line in notices if not any(f"'{name}'" in line for name in names)]
        assert about_data, f"{path}: the review data is offline here, but no notice says what replaced IMDb"


def test_solutions_exercises_answer_correct(lab_page, lab):
    page, path = lab_page, f"notebooks/solutions/{SOLUTIONS.name}"
    open_notebook(page, lab, path)
    state = run_all(page, lab, path)
    screenshot(page, f"solutions-{SOLUTIONS.stem}")
    assert not state["errors"], f"{path}: cells raised errors: {state['errors']}"
    lines = output_lines(page)
    committed = sum(
        "".join(output.get("text", "")).count("✅")
        for cell in json.loads((lab.root / path).read_text())["cells"] if cell["cell_type"] == "code"
        for output in cell.get("outputs", [])
    )
    passed = [line for line in lines if line.startswith("✅")]
    failed = [line for line in lines if line.startswith("❌")]
    assert not failed, f"{path}: exercises answer ❌: {failed}"
    assert len(passed) >= max(committed, 1), f"{path}: {len(passed)} ✅ shown, {committed} in the committed outputs"


def test_an_error_in_a_cell_is_caught(lab_page, lab):
    # The checks above must be able to fail: a notebook whose second cell raises.
    cells = ["print('first cell ran')", "1 / 0", "print('never reached')"]
    notebook = {
        "nbformat": 4, "nbformat_minor": 5,
        "metadata": {"kernelspec": {"name": KERNEL, "display_name": KERNEL, "language": "python"}},
        "cells": [{"cell_type": "code", "id": f"cell-{i}", "metadata": {}, "source": source,
                   "outputs": [], "execution_count": None} for i, source in enumerate(cells)],
    }
    (lab.root / "notebooks" / "_broken.ipynb").write_text(json.dumps(notebook))
    page, path = lab_page, "notebooks/_broken.ipynb"
    open_notebook(page, lab, path)
    state = run_all(page, lab, path)
    assert state["errors"] == ["cell 1: ZeroDivisionError: division by zero"]
    assert state["counts"][0] == 1 and state["counts"][2] is None
    assert errors_shown(page) == 1
