"""JupyterLab on 127.0.0.1 and a system Chromium driven by Playwright, for the browser tests.

The server runs on temporary copies of notebooks/ (so nothing is ever saved over the
committed notebooks), with its own settings, workspace, runtime and config folders, news
and update checks off, and the canonical offline environment (tests/canonical_env.py)
that its kernels inherit. Everything it starts is ended by PID when the session ends.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from tests import canonical_env
from tests.browser.chromium import find_chromium

REPO = Path(__file__).resolve().parents[2]
KERNEL = "transformers-course"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
LAB_SETTINGS = {  # user settings: no news, no update check, every cell attached to the DOM, never save
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
    "@jupyterlab/docmanager-extension/plugin": {"autosave": False},
}


@dataclass
class Lab:
    url: str
    token: str
    root: Path
    pid: int

    def api(self, method: str, path: str) -> object:
        """Call the Jupyter server's REST API."""
        request = urllib.request.Request(f"{self.url}/api/{path}", method=method,
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=30) as response:
            body = response.read()
        return json.loads(body) if body else None

    def kernel_cpu_seconds(self) -> float:
        """CPU time (user + system) the running kernels have used so far."""
        total = 0.0
        for process in psutil.Process(self.pid).children(recursive=True):
            try:
                if "ipykernel" in " ".join(process.cmdline()):
                    total += sum(process.cpu_times()[:2])
            except psutil.NoSuchProcess:
                pass
        return total

    def shutdown_kernels(self) -> None:
        """Stop every kernel, so one notebook's kernel does not compete with the next for the CPU."""
        for kernel in self.api("GET", "kernels"):
            self.api("DELETE", f"kernels/{kernel['id']}")


# The order the browser tests start in. `make test-browser` runs them on two pytest-xdist workers
# (--dist load), which take the first two tests each and then one more whenever one ends. The
# longest, notebook 05 (~205 s wall on 2 cores), comes first and shares its worker only with the
# short error test, while the other worker runs the rest (03 ~80 s, 02 ~40 s, 04 ~33 s, 01 ~14 s,
# the solutions ~9 s): both end after about the same time.
BROWSER_ORDER = ("chromium-05_", "test_an_error_in_a_cell_is_caught", "chromium-03_", "chromium-02_",
                 "chromium-04_", "chromium-01_", "test_solutions_exercises_answer_correct")


def pytest_collection_modifyitems(items):
    """Put the browser tests in BROWSER_ORDER (tests it does not name go last), in their own slots."""
    slots = [i for i, item in enumerate(items) if item.get_closest_marker("browser")]

    def rank(item) -> int:
        return next((i for i, part in enumerate(BROWSER_ORDER) if part in item.nodeid), len(BROWSER_ORDER))

    for slot, item in zip(slots, sorted((items[i] for i in slots), key=rank)):
        items[slot] = item


def pytest_terminal_summary(terminalreporter):
    """Wall and kernel CPU time per notebook (recorded as user properties, so they survive pytest-xdist)."""
    timings = [(report.nodeid, value) for reports in terminalreporter.stats.values() for report in reports
               for key, value in getattr(report, "user_properties", ()) if key == "browser_timing"]
    if timings:
        terminalreporter.section("browser tests: wall time and kernel CPU time per notebook")
        for nodeid, (wall, cpu, phases) in sorted(timings):
            parts = ", ".join(f"{name} {seconds:.1f}" for name, seconds in phases.items())
            terminalreporter.write_line(
                f"{wall:7.1f} s wall {cpu:7.1f} s kernel CPU  {nodeid.split('::')[-1]}  ({parts})")


@pytest.fixture(scope="session")
def chromium() -> str:
    """The Chromium to drive; skips (or fails, with COURSE_REQUIRE_BROWSER=1) when there is none."""
    path = find_chromium()
    if path is None:
        message = ("no Chromium found: install one (README, 'Browser tests') or set "
                   "COURSE_CHROMIUM=/path/to/chromium")
        if os.environ.get("COURSE_REQUIRE_BROWSER") == "1":
            pytest.fail(message + " (COURSE_REQUIRE_BROWSER=1 makes this a failure)", pytrace=False)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args, chromium):
    """pytest-playwright's launch arguments: the system Chromium, headless, no background traffic.

    Playwright gives every launch a fresh temporary profile (user-data-dir) of its own.
    """
    return {**browser_type_launch_args, "executable_path": chromium, "args": CHROMIUM_ARGS}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    return {**browser_context_args, "viewport": {"width": 1280, "height": 900}}


# `python -m jupyterlab`, less a 3-second start-up cost: jsonschema's format checkers import
# rfc3987_syntax, which builds some 40 Lark parsers for IRIs at import time (jsonschema issue
# #1428); no Jupyter schema checks an IRI format, and without the module jsonschema skips it.
LAB_MAIN = ("import sys; sys.modules['rfc3987_syntax'] = None; from jupyterlab.labapp import main; "
            "sys.argv[0] = 'jupyter-lab'; sys.exit(main())")


def _end_with_parent() -> None:
    """In the server's process, before it starts: on Linux, get SIGTERM when the pytest process that
    started it dies, however it dies (killed, Ctrl-C twice), so the server still shuts its kernels down."""
    if sys.platform == "linux":
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG = 1


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _stop(process: subprocess.Popen) -> None:
    """End the server and everything it started (kernels run in their own sessions), by PID."""
    try:
        children = psutil.Process(process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        children = []
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)  # the server shuts its kernels down on SIGTERM
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    _, alive = psutil.wait_procs(children, timeout=10)
    for child in alive:
        child.kill()


@pytest.fixture(scope="session")
def lab(chromium) -> Lab:
    """A JupyterLab server on 127.0.0.1 serving a temporary copy of the course."""
    # Not tmp_path_factory: pytest prunes old basetemp folders, also those of a concurrent run.
    base = Path(tempfile.mkdtemp(prefix="course-lab-"))
    root = base / "course"
    shutil.copytree(REPO / "notebooks", root / "notebooks",
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints", "outputs"))
    for shared in ("course_utils", "data"):  # relative links and paths from the notebooks still work
        (root / shared).symlink_to(REPO / shared, target_is_directory=True)
    settings = base / "settings"
    for plugin, values in LAB_SETTINGS.items():
        path = settings / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    config = base / "config"
    config.mkdir()
    (config / "jupyter_server_config.json").write_text(json.dumps({
        "ServerApp": {
            "open_browser": False, "port_retries": 0, "allow_root": True,  # CI runs as root
            "terminals_enabled": False,
            "jpserver_extensions": {"jupyter_lsp": False, "jupyter_server_terminals": False},
        },
        "LabApp": {
            "news_url": None,
            "check_for_updates_class": "jupyterlab.handlers.announcements.NeverCheckForUpdate",
            "extension_manager": "readonly",  # the 'pypi' manager would query the package index
            "expose_app_in_browser": True,  # window.jupyterapp, to run JupyterLab commands by name
            "user_settings_dir": str(settings),
            "workspaces_dir": str(base / "workspaces"),
        },
    }))
    port, token = _free_port(), secrets.token_hex(16)
    env = {**os.environ, **canonical_env.CANONICAL_ENV, "JUPYTER_CONFIG_DIR": str(config),
           "JUPYTER_RUNTIME_DIR": str(base / "runtime")}
    log = open(base / "jupyterlab.log", "w")
    process = subprocess.Popen(
        [sys.executable, "-c", LAB_MAIN, "--ip=127.0.0.1", f"--port={port}",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}"],
        cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        preexec_fn=_end_with_parent,
    )
    server = Lab(f"http://127.0.0.1:{port}", token, root, process.pid)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                server.api("GET", "status")
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    log_tail = (base / "jupyterlab.log").read_text()[-2000:]
                    raise RuntimeError(f"JupyterLab did not start; the end of its log:\n{log_tail}")
                time.sleep(0.5)
        kernels = server.api("GET", "kernelspecs")["kernelspecs"]
        assert KERNEL in kernels, (
            f"the course kernel {KERNEL!r} is not registered for {sys.executable}; run `make setup`")
        yield server
    finally:
        _stop(process)
        log.close()
        shutil.rmtree(base, ignore_errors=True)
