"""The hosted-notebook install cell (Colab, Kaggle), offline: a fresh venv without course_utils.

The fresh virtual environment sees the course venv's packages (torch, pandas, ...) through a plain
path entry, which does not run the editable install's hook, so `course_utils` is missing there, as on
Colab. COURSE_PACKAGE_SOURCE points the cell at a copy of the checkout instead of the repository, and
pip is told to stay offline (no index, no build isolation: the build uses the setuptools it sees).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import build_notebooks as bn  # noqa: E402

from tests import canonical_env  # noqa: E402

NOTEBOOK = ROOT / "notebooks" / "01_self_attention.ipynb"


def first_cells(path: Path) -> tuple[str, str]:
    """The install cell and the setup cell after it, as the generated notebook holds them."""
    cells = [cell for cell in nbformat.read(path, as_version=4).cells if cell.cell_type == "code"]
    assert cells[0].id == bn.COLAB_CELL_ID and cells[0].source == bn.colab_cell_source()
    return cells[0].source, cells[1].source


@pytest.fixture
def fresh_venv(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                               check=True, capture_output=True, text=True).stdout.strip())
    (site / "course-venv.pth").write_text(sysconfig.get_path("purelib") + "\n")  # a path entry, not a site dir
    return python, venv


@pytest.fixture
def checkout(tmp_path):
    """What `pip install git+REPOSITORY@TAG` builds from: the package and its metadata."""
    copy = tmp_path / "checkout"
    copy.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, copy / name)
    shutil.copytree(ROOT / "course_utils", copy / "course_utils", ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def run(python: Path, code: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([str(python), "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_install_cell_installs_the_course_package_where_it_is_missing(fresh_venv, checkout, tmp_path):
    python, venv = fresh_venv
    install, setup = first_cells(NOTEBOOK)
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PIP_", "PYTHON", "VIRTUAL_ENV"))}
    env.update(canonical_env.CANONICAL_ENV)
    env.update({
        "COURSE_PACKAGE_SOURCE": str(checkout),
        "COURSE_CACHE_DIR": str(tmp_path / "cache"),
        "PIP_CONFIG_FILE": os.devnull,  # this machine's pip configuration does not apply
        "PIP_NO_INDEX": "1",  # offline: nothing is downloaded
        "PIP_NO_BUILD_ISOLATION": "0",  # pip's spelling of --no-build-isolation
        "PIP_CACHE_DIR": str(tmp_path / "pip-cache"),
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    })
    work = tmp_path / "work"  # not the repository: `import course_utils` must not find ./course_utils
    work.mkdir()

    missing = run(python, "import importlib.util; print(importlib.util.find_spec('course_utils'))", work, env)
    assert missing.stdout.strip() == "None", missing.stderr

    first = run(python, f"{install}\n{setup}\nprint('device:', DEVICE.type)\nprint('from:', course_utils.__file__)",
                work, env)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "device: cpu" in first.stdout
    installed_in = Path(first.stdout.split("from: ", 1)[1].strip()).resolve()
    assert installed_in.is_relative_to(venv.resolve()), installed_in  # the fresh venv's copy, not the checkout

    # now installed: the cell does nothing and prints nothing (a source pip could not use proves pip did not run)
    again = run(python, install, work, {**env, "COURSE_PACKAGE_SOURCE": str(tmp_path / "no-such-package")})
    assert again.returncode == 0 and again.stdout == "", again.stdout + again.stderr


def test_every_generated_notebook_opens_with_the_same_install_cell():
    generated = [chapter.learner_path for chapter in bn.chapters()] + [chapter.solutions_path for chapter in bn.chapters()]
    assert generated
    for path in generated:
        install, _ = first_cells(path)
        assert "COURSE_PACKAGE_SOURCE" in install
        if bn.REPOSITORY is None:  # unpublished: no address to install from, and no link that leads nowhere
            assert "git+" not in install and "Open in Colab" not in nbformat.read(path, as_version=4).cells[0].source
        else:
            assert f"git+{bn.REPOSITORY}@{bn.RELEASE_TAG}" in install


@pytest.mark.skipif(bn.REPOSITORY is not None, reason="the published install cell installs from REPOSITORY")
def test_unpublished_install_cell_says_how_to_get_the_package(fresh_venv, tmp_path):
    python, _ = fresh_venv
    install, _ = first_cells(NOTEBOOK)
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("PIP_", "PYTHON", "VIRTUAL_ENV", "COURSE_PACKAGE_SOURCE"))}
    work = tmp_path / "work"
    work.mkdir()
    result = run(python, install, work, env)
    assert result.returncode != 0
    assert "ModuleNotFoundError" in result.stderr and "make lab" in result.stderr and "COURSE_PACKAGE_SOURCE" in result.stderr
