"""Device choice, seeding and the environment report every notebook starts with."""

from __future__ import annotations

import logging
import os
import platform
import random
import threading
import urllib.error
import urllib.request
from importlib import metadata

from pathlib import Path

import numpy as np
import torch

_DEVICE_ORDER = ("cuda", "mps", "cpu")


_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


def env_flag(name: str, default: bool) -> bool:
    """A boolean setting: 1/0, true/false, yes/no (on/off), any case; unset or empty -> `default`.

    Anything else is an error, so COURSE_QUICK=ture never silently selects hours of full mode.
    """
    value = os.environ.get(name, "").strip().lower()
    if not value:
        return default
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(
        f"{name}={os.environ[name]!r} is not a yes/no setting: use 1 or 0 (also true/false, yes/no), "
        f"or unset it for the default ({'1' if default else '0'})."
    )


def is_offline() -> bool:
    """True when COURSE_OFFLINE or HF_HUB_OFFLINE asks for offline mode."""
    return env_flag("COURSE_OFFLINE", False) or env_flag("HF_HUB_OFFLINE", False)


def _available(kind: str) -> bool:
    if kind == "cuda":
        return torch.cuda.is_available()
    if kind == "mps":
        return bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()
    return kind == "cpu"


def get_device(prefer: str | None = None) -> torch.device:
    """Return the device to use: CUDA, then Apple MPS, then CPU.

    `prefer` (or the COURSE_DEVICE environment variable) forces one, e.g.
    COURSE_DEVICE=cpu to avoid an MPS operator that is missing or differs.
    """
    wanted = (prefer or os.environ.get("COURSE_DEVICE", "")).strip().lower()
    if wanted:
        kind = wanted.split(":")[0]
        if kind not in _DEVICE_ORDER:
            raise ValueError(
                f"COURSE_DEVICE={wanted!r} is not a device this course knows; "
                "use one of 'cuda', 'mps' or 'cpu' (or unset it to choose automatically)."
            )
        if not _available(kind):
            raise RuntimeError(
                f"COURSE_DEVICE asks for {wanted!r} but this machine has no {kind.upper()} "
                "device; unset COURSE_DEVICE or set it to 'cpu'."
            )
        return torch.device(wanted)
    for kind in _DEVICE_ORDER:
        if _available(kind):
            return torch.device(kind)
    return torch.device("cpu")  # pragma: no cover - cpu is always available


def seed_everything(seed: int = 123) -> None:
    """Seed Python, NumPy and torch (CPU, CUDA and MPS) for repeatable runs."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device and MPS
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def mixed_precision(device: torch.device) -> torch.dtype | None:
    """The autocast dtype for training on `device`: bfloat16, float16 (needs a GradScaler) or None.

    bfloat16 only where the GPU computes it natively (compute capability 8.0+, e.g. A100, RTX 30xx).
    torch.cuda.is_bf16_supported() alone also says True on T4/V100 (Colab, Kaggle), which only
    emulate bfloat16, slowly; there float16 with a GradScaler is the fast, correct choice.
    CPU and Apple MPS train in full precision (None).
    """
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported(including_emulation=False) else torch.float16


def package_version(name: str) -> str:
    """Installed version of a distribution, or 'not installed'."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def environment_report(device: torch.device | None = None) -> dict[str, str]:
    """Versions, device and network mode, as a dict (print it in a setup cell)."""
    device = device or get_device()
    return {
        "python": platform.python_version(),
        "torch": package_version("torch"),
        "transformers": package_version("transformers"),
        "device": str(device),
        "mode": "offline (stand-in models)" if is_offline() else "online (hub models when reachable)",
    }


def print_environment(device: torch.device | None = None) -> None:
    """Print the environment doctor's short summary: [OK]/[FAIL] lines, each FAIL with its fix."""
    from . import doctor  # imported here: doctor builds on this module

    print("\n".join(doctor.summary(doctor.run_checks(device))))


def require_version(name: str, minimum: str) -> None:
    """Raise a clear error if package `name` is older than `minimum`.

    Uses packaging.version (distutils.version is gone since Python 3.12).
    """
    from packaging.version import Version

    installed = package_version(name)
    if installed == "not installed":
        raise ImportError(f"{name} is not installed; run `make lab` or `pip install -r requirements.txt`.")
    if Version(installed) < Version(minimum):
        raise ImportError(
            f"{name} {installed} is older than the {minimum} this course needs; "
            "run `pip install -r requirements.txt` in the course's virtual environment."
        )


def cache_dir() -> Path:
    """Folder for generated stand-ins and data: COURSE_CACHE_DIR, else data/cache in the repo.

    Outside a checkout of the course (package installed elsewhere) it falls back to
    ~/.cache/transformers-course. The folder is created if needed.
    """

    from .cache import os_errors_explained

    configured = os.environ.get("COURSE_CACHE_DIR", "").strip()
    if configured:
        path = Path(configured).expanduser()
    else:
        repo = Path(__file__).resolve().parent.parent
        if (repo / "notebooks").is_dir() and (repo / "data").is_dir():
            path = repo / "data" / "cache"
        else:
            path = Path.home() / ".cache" / "transformers-course"
    with os_errors_explained(path, "the course cache (COURSE_CACHE_DIR)"):  # a file there, read-only, full
        path.mkdir(parents=True, exist_ok=True)
    return path


# Messages of transformers.modeling_utils that are noise for learners: the LOAD REPORT prints local
# paths (the notebooks say which heads are new), and every model whose config predates `loss_type`
# (gpt2 included) gets "loss_type=None ... unrecognized" on its first labels= call.
_NOISE = ("LOAD REPORT", "`loss_type=None` was set in the config but it is unrecognized")


class _NoLoadReport(logging.Filter):
    """Drop transformers' noise messages (_NOISE) from the model-loading logger."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(fragment in message for fragment in _NOISE)


def quiet_hf_logs() -> None:
    """Hide transformers' noise (progress bars, load reports, advisory notes); keep its warnings.

    Warnings such as "the attention mask is not set" or "right-padding was detected" stay
    visible: they are what learners must learn to read. The "Loading weights" bar, the
    LOAD REPORT (with local paths) of every from_pretrained and the spurious loss_type note
    are hidden.
    """
    from transformers.utils import logging as hf_logging

    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")  # read at each advisory call
    hf_logging.set_verbosity_warning()  # the default; undoes an older setup's ERROR in a live kernel
    hf_logging.disable_progress_bar()
    loader = logging.getLogger("transformers.modeling_utils")
    if not any(isinstance(f, _NoLoadReport) for f in loader.filters):
        loader.addFilter(_NoLoadReport())


def setup_notebook(seed: int = 123, quiet: bool = True) -> torch.device:
    """The one setup cell: choose the device, seed everything, quiet HF logs, return the device."""
    device = get_device()
    seed_everything(seed)
    if quiet:
        quiet_hf_logs()
    return device


def url_answers(url: str, timeout: float = 2.0) -> bool:
    """True if the server of `url` answers a HEAD request within `timeout` seconds.

    The probe runs in a daemon thread, so a slow DNS lookup cannot hold the caller
    longer than `timeout`: offline classrooms never wait on the network for long.
    """
    answer: dict[str, bool] = {}

    def probe() -> None:
        try:
            with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout):
                answer["ok"] = True
        except urllib.error.HTTPError as error:
            answer["ok"] = error.code < 500  # it answered; a 4xx still means it is reachable
        except Exception:  # DNS failure, refused, timeout, TLS error: nobody there
            answer["ok"] = False

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    return answer.get("ok", False)
