"""pytest plugin of the newest-versions lane (scripts/latest_lane.py): failures and warnings as JSON lines.

Loaded with `-p latest_lane_plugin` (scripts/ on PYTHONPATH); writes to $LATEST_LANE_REPORT.
For a notebook cell it records every warning the kernel printed on stderr that the
committed outputs do not contain, also in `nbval-ignore-output` cells, whose outputs
nbval does not compare and so would let a new deprecation through silently.
"""

from __future__ import annotations

import json
import os
import re

import pytest

WARNING = re.compile(r"\w*(Warning|Deprecat)\w*")


def _write(record: dict) -> None:
    with open(os.environ["LATEST_LANE_REPORT"], "a", encoding="utf-8") as report:
        report.write(json.dumps(record) + "\n")


def _stderr_lines(outputs) -> list[str]:
    lines = []
    for output in outputs or []:
        if output.get("output_type") == "stream" and output.get("name") == "stderr":
            text = output.get("text", "")
            lines += ("".join(text) if isinstance(text, list) else text).splitlines()
    return lines


def _cell(item) -> dict:
    cell = item.cell
    first_line = next((line for line in cell.source.splitlines() if line.strip()), "")
    return {
        "notebook": item.parent.nodeid,
        "cell": item.cell_num,
        "cell_id": cell.get("id", ""),
        "source": first_line[:80],
        "compared": bool(item.options.get("check")),
    }


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    is_cell = hasattr(item, "cell") and hasattr(item, "cell_num")
    if is_cell and report.when == "call" and item.test_outputs is not None:
        committed = set(_stderr_lines(item.cell.get("outputs")))
        for line in _stderr_lines(item.test_outputs):
            if WARNING.search(line) and line not in committed:
                _write({"kind": "warning", **_cell(item), "message": line.strip()})
    if report.failed:
        record = {"kind": "failure", "nodeid": item.nodeid, "when": report.when,
                  "message": report.longreprtext[-3000:]}
        if is_cell:
            record.update(_cell(item))
        _write(record)


def pytest_warning_recorded(warning_message, when, nodeid, location):
    _write({
        "kind": "warning",
        "nodeid": nodeid or f"({when})",
        "message": f"{warning_message.category.__name__}: {warning_message.message}",
        "where": f"{warning_message.filename}:{warning_message.lineno}",
    })
