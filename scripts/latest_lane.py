"""The newest-versions lane (`make test-latest`): the whole suite with the newest releases of every requirement.

Builds (or upgrades) a separate virtual environment, .venv-latest, with the newest release of
every package in requirements.txt except torch, which stays at its pin (the CPU wheel; a
newer torch would mean a multi-GB download and is bumped on purpose, not by this lane).
Then runs the unit tests and every notebook under nbval in it and prints, on stderr, each
failure and each new warning by notebook and cell (or by test).

    python scripts/latest_lane.py               # upgrade .venv-latest to the newest releases, run, report
    python scripts/latest_lane.py --no-upgrade  # reuse .venv-latest as it is (no network)
    python scripts/latest_lane.py --build-only  # only build/upgrade and show what changed
    python scripts/latest_lane.py -- -k 03      # extra pytest arguments after --

Exit status: 0 when nothing failed and no new warning appeared, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv-latest"
PYTHON = VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
REPORT = ROOT / "build" / "latest" / "report.jsonl"
KEPT_AT_PIN = {"torch"}


def read_pins() -> dict[str, str]:
    """`name==version` lines of requirements.txt."""
    pins = {}
    for raw in (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if "==" in line and not line.startswith("-"):
            name, version = (part.strip() for part in line.split("==", 1))
            pins[name] = version
    return pins


def build(upgrade: bool) -> None:
    """Create .venv-latest if needed, install the newest releases (torch at its pin), register its kernel."""
    if not PYTHON.exists():
        print(f"creating {VENV.relative_to(ROOT)}", file=sys.stderr)
        venv.create(VENV, with_pip=True)
        upgrade = True
    if upgrade:
        pins = read_pins()
        specs = [f"{name}=={version}" if name in KEPT_AT_PIN else name for name, version in pins.items()]
        subprocess.run([str(PYTHON), "-m", "pip", "install", "--quiet", "--upgrade", "--upgrade-strategy", "eager",
                        *specs, "-e", str(ROOT)], check=True)
    # The course kernel, as `make setup` registers it in .venv: the notebooks name it, and nbgrader
    # (tests/test_classroom.py) starts the kernel a notebook names. Inside .venv-latest, so the lane's
    # notebooks run on the lane's packages.
    subprocess.run([str(PYTHON), "-m", "ipykernel", "install", "--sys-prefix", "--name", "transformers-course",
                    "--display-name", "Transformers course (.venv-latest)"], check=True, stdout=subprocess.DEVNULL)


def installed_versions(python: Path) -> dict[str, str]:
    """{normalised name: version} of everything installed for `python`."""
    listing = subprocess.run([str(python), "-m", "pip", "list", "--format", "json"],
                             capture_output=True, text=True, check=True).stdout
    return {_normal(entry["name"]): entry["version"] for entry in json.loads(listing)}


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def show_drift() -> None:
    """Print each requirement whose newest release differs from the pin."""
    versions = installed_versions(PYTHON)
    newest = {name: versions.get(_normal(name), "missing") for name in read_pins()}
    drift = [f"{name} {pin} -> {newest[name]}" for name, pin in read_pins().items()
             if newest[name].split("+")[0] != pin]  # 2.13.0+cpu is the pinned torch
    print("latest lane: " + (", ".join(drift) if drift else "every requirement is at its newest release"),
          file=sys.stderr)


def run_suite(pytest_args: list[str]) -> int:
    """The whole suite (unit tests and nbval notebooks, not the browser tests) in .venv-latest."""
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text("")
    env = dict(os.environ, LATEST_LANE_REPORT=str(REPORT),
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT / "scripts"), os.environ.get("PYTHONPATH")])))
    command = [str(PYTHON), "-m", "pytest", "-p", "latest_lane_plugin", "-m", "not browser", "--color=no",
               *pytest_args]
    print("latest lane: " + " ".join(command[1:]), file=sys.stderr)
    return subprocess.run(command, cwd=ROOT, env=env).returncode


def _where(record: dict) -> str:
    if "notebook" in record:
        compared = "" if record["compared"] else ", output not compared (nbval-ignore-output)"
        return f"{record['notebook']} cell {record['cell']} (id {record['cell_id']}{compared}: {record['source']})"
    return record.get("nodeid", "?")


def _failure_reason(record: dict) -> str:
    plain = re.sub(r"\x1b\[[0-9;]*m", "", record["message"])  # the kernel's traceback is coloured
    lines = [line.strip() for line in plain.splitlines() if line.strip()]
    keep = [line for line in lines if re.search(r"Error|Warning|Deprecat|assert|mismatch|Expected|Got", line)]
    return " | ".join((keep or lines)[-4:])[:600]


def summarise() -> tuple[int, int]:
    """Print failures and new warnings on stderr; return their counts."""
    records = [json.loads(line) for line in REPORT.read_text(encoding="utf-8").splitlines() if line.strip()]
    failures = [record for record in records if record["kind"] == "failure"]
    seen, warnings = set(), []
    for record in records:
        key = (_where(record), record["message"])
        if record["kind"] == "warning" and key not in seen:
            seen.add(key)
            warnings.append(record)
    for record in failures:
        print(f"FAIL {_where(record)}: {_failure_reason(record)}", file=sys.stderr)
    for record in warnings:
        where = f" [{record['where']}]" if "where" in record else ""
        print(f"WARN {_where(record)}: {record['message']}{where}", file=sys.stderr)
    print(f"latest lane: {len(failures)} failures, {len(warnings)} new warnings (details: {REPORT.relative_to(ROOT)})",
          file=sys.stderr)
    return len(failures), len(warnings)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-upgrade", action="store_true", help="reuse .venv-latest without asking the index")
    parser.add_argument("--build-only", action="store_true", help="build/upgrade and show the drift, run nothing")
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    args = parser.parse_args(argv)
    build(upgrade=not args.no_upgrade)
    show_drift()
    if args.build_only:
        return 0
    status = run_suite(args.pytest_args)
    failures, warnings = summarise()
    return 1 if status not in (0, 5) or failures or warnings else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
