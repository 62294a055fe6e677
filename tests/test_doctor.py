import subprocess
import sys
from pathlib import Path

import torch

from course_utils import doctor

REPO = Path(__file__).resolve().parent.parent


def test_mismatched_version_fails_with_the_pip_command_that_fixes_it():
    check = doctor.check_package("transformers", "5.23.0", installed="5.24.0")
    assert not check.ok
    assert "5.24.0 installed" in check.detail and "5.23.0" in check.detail
    assert check.fix == f"{sys.executable} -m pip install transformers==5.23.0"
    assert check.line().startswith("[FAIL] transformers:")
    assert "fix: " + check.fix in check.line()


def test_local_build_label_matches_the_pin_and_a_missing_package_fails():
    assert doctor.check_package("torch", "2.13.0", installed="2.13.0+cpu").ok
    missing = doctor.check_package("no-such-course-package", "1.0")
    assert not missing.ok and "not installed" in missing.detail
    assert missing.fix.endswith("pip install no-such-course-package==1.0")


def test_wrong_kernel_fails_with_the_kernel_to_choose(tmp_path):
    repo = tmp_path / "course"
    (repo / ".venv").mkdir(parents=True)
    (repo / ".venv" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    wrong = doctor.check_kernel(prefix="/usr", repo=repo)
    assert not wrong.ok
    assert "not in the course's .venv" in wrong.detail
    assert "'Transformers course (.venv)'" in wrong.fix and "make lab" in wrong.fix
    assert doctor.check_kernel(prefix=str(repo / ".venv"), repo=repo).ok


def test_this_test_run_uses_the_course_venv_when_there_is_one():
    check = doctor.check_kernel()
    venv = REPO / ".venv"
    expected = not (venv / "pyvenv.cfg").is_file() or Path(sys.prefix).resolve() == venv.resolve()
    assert check.ok is expected


def test_old_python_and_a_full_disk_fail():
    assert doctor.check_python((3, 11, 7)).ok
    old = doctor.check_python((3, 9, 18))
    assert not old.ok and "3.9.18" in old.detail and "Python 3.11" in old.fix
    full = doctor.check_cache(free_bytes=lambda path: 1e9)
    assert not full.ok and "1.0 GB free" in full.detail and "COURSE_CACHE_DIR" in full.fix
    assert doctor.check_cache(free_bytes=lambda path: 50e9).ok


def test_unknown_course_device_fails(monkeypatch):
    monkeypatch.setenv("COURSE_DEVICE", "tpu")
    check = doctor.check_device()
    assert not check.ok and "unset COURSE_DEVICE" in check.fix
    assert doctor.check_device(torch.device("cpu")).ok


def test_offline_mode_needs_no_network(monkeypatch):
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    assert doctor.check_mode().ok


def test_embedded_pins_equal_requirements_txt():
    # Outside a checkout the doctor compares with PINS; it must say what requirements.txt says.
    assert doctor.PINS == doctor.read_pins(REPO / "requirements.txt")


def test_summary_folds_passing_packages_and_shows_each_failure():
    pinned, source = doctor.pins()
    checks = [doctor.Check("python", True, "3.11.7")]
    checks += [doctor.Check(name, name != "pandas", "x", "fix pandas") for name in pinned]
    lines = doctor.summary(checks)
    others = len(pinned) - 2
    assert f"[OK]   packages: {others - 1} of the other {others} pinned packages match {source}" in lines
    assert any(line.startswith("[FAIL] pandas:") and "fix: fix pandas" in line for line in lines)
    assert sum(line.startswith("[OK]   torch") or line.startswith("[OK]   transformers") for line in lines) == 2


def test_command_line_prints_every_pin_and_exits_nonzero_on_a_failure():
    env = {"COURSE_OFFLINE": "1", "COURSE_DEVICE": "tpu", "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-m", "course_utils.doctor"], capture_output=True, text=True,
                            env=env, cwd=REPO, timeout=120)
    assert result.returncode == 1, result.stdout + result.stderr
    for name in doctor.pins()[0]:
        assert f" {name}: " in result.stdout
    assert "[FAIL] device:" in result.stdout and "FAIL" in result.stdout.splitlines()[-1]
