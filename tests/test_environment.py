import random

import numpy as np
import pytest
import torch
from importlib import metadata

import course_utils
from course_utils import environment


def test_course_device_forces_cpu(monkeypatch):
    monkeypatch.setenv("COURSE_DEVICE", "cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert course_utils.get_device() == torch.device("cpu")


def test_auto_prefers_cuda_then_mps_then_cpu(monkeypatch):
    monkeypatch.delenv("COURSE_DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert course_utils.get_device().type == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert course_utils.get_device().type == "mps"
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert course_utils.get_device().type == "cpu"


def test_course_device_unavailable_or_unknown_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("COURSE_DEVICE", "cuda")
    with pytest.raises(RuntimeError, match="no CUDA device"):
        course_utils.get_device()
    monkeypatch.setenv("COURSE_DEVICE", "tpu")
    with pytest.raises(ValueError, match="'cuda', 'mps' or 'cpu'"):
        course_utils.get_device()


def test_prefer_argument_overrides_environment(monkeypatch):
    monkeypatch.setenv("COURSE_DEVICE", "mps")
    assert course_utils.get_device("cpu") == torch.device("cpu")


def _draws():
    return random.random(), float(np.random.rand()), torch.rand(3).tolist()


def test_seed_everything_reproduces_python_numpy_and_torch():
    course_utils.seed_everything(7)
    first = _draws()
    course_utils.seed_everything(7)
    assert _draws() == first
    course_utils.seed_everything(8)
    assert _draws() != first


@pytest.mark.parametrize(("variable", "value", "offline"), [
    ("COURSE_OFFLINE", "1", True), ("HF_HUB_OFFLINE", "true", True), ("COURSE_OFFLINE", "0", False),
])
def test_is_offline_reads_either_variable(monkeypatch, variable, value, offline):
    monkeypatch.delenv("COURSE_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv(variable, value)
    assert course_utils.is_offline() is offline


def test_environment_report_uses_installed_versions(monkeypatch):
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    report = course_utils.environment_report(torch.device("cpu"))
    assert report["torch"] == metadata.version("torch")
    assert report["transformers"] == metadata.version("transformers")
    assert report["device"] == "cpu"
    assert report["mode"].startswith("offline")


def test_print_environment_prints_every_field(capsys):
    course_utils.print_environment(torch.device("cpu"))
    out = capsys.readouterr().out
    for key in ("python", "torch", "transformers", "device", "mode"):
        assert f"{key}:" in out


def test_require_version(monkeypatch):
    course_utils.require_version("torch", "2.0")
    with pytest.raises(ImportError, match="older than the 999"):
        course_utils.require_version("torch", "999")
    with pytest.raises(ImportError, match="not installed"):
        course_utils.require_version("surely-not-a-package-xyz", "1.0")


def test_cache_dir_honours_variable(monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path / "c"))
    assert course_utils.cache_dir() == tmp_path / "c"
    assert (tmp_path / "c").is_dir()


def test_setup_notebook_seeds_and_quiets(monkeypatch):
    from transformers.utils import logging as hf_logging

    monkeypatch.setenv("COURSE_DEVICE", "cpu")
    hf_logging.enable_progress_bar()
    device = course_utils.setup_notebook(5)
    after_setup = torch.rand(2)
    torch.manual_seed(5)
    assert torch.equal(after_setup, torch.rand(2))
    assert device == torch.device("cpu")
    assert not hf_logging.is_progress_bar_enabled()
    assert hf_logging.get_verbosity() == hf_logging.WARNING  # warnings stay visible
    hf_logging.enable_progress_bar()


def test_quiet_hf_logs_hides_load_reports_but_keeps_warnings(monkeypatch, tmp_path):
    import logging

    from transformers import GPT2Config, GPT2ForSequenceClassification, GPT2LMHeadModel
    from transformers.utils import logging as hf_logging

    monkeypatch.setenv("TRANSFORMERS_NO_ADVISORY_WARNINGS", "0")
    monkeypatch.delenv("TRANSFORMERS_NO_ADVISORY_WARNINGS")  # restored at teardown
    hf_logging.set_verbosity_error()
    GPT2LMHeadModel(GPT2Config(vocab_size=64, n_positions=16, n_embd=8, n_layer=1, n_head=2)).save_pretrained(tmp_path)
    seen: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    handler = Collect(level=logging.WARNING)
    logging.getLogger("transformers").addHandler(handler)
    try:
        course_utils.quiet_hf_logs()
        course_utils.quiet_hf_logs()  # idempotent: one filter, not two
        GPT2ForSequenceClassification.from_pretrained(tmp_path, num_labels=2)  # new head: a LOAD REPORT
        lm = GPT2LMHeadModel.from_pretrained(tmp_path)
        ids = torch.tensor([[1, 2, 3]])
        lm(ids, labels=ids)  # first labels= call: the spurious "loss_type=None" note (once per process)
        logging.getLogger("transformers.modeling_utils").warning(
            "`loss_type=None` was set in the config but it is unrecognized. Using the default loss: `ForCausalLMLoss`.")
        logging.getLogger("transformers.generation.utils").warning("The attention mask is not set")
    finally:
        logging.getLogger("transformers").removeHandler(handler)
        hf_logging.enable_progress_bar()
    assert seen == ["The attention mask is not set"]
    assert len(logging.getLogger("transformers.modeling_utils").filters) == 1
    assert hf_logging.get_verbosity() == hf_logging.WARNING
    assert environment.os.environ["TRANSFORMERS_NO_ADVISORY_WARNINGS"] == "1"

    logging.getLogger("transformers.modeling_utils").filters.clear()  # without the filter the report shows
    logging.getLogger("transformers").addHandler(handler)
    try:
        GPT2ForSequenceClassification.from_pretrained(tmp_path, num_labels=2)
    finally:
        logging.getLogger("transformers").removeHandler(handler)
        course_utils.quiet_hf_logs()
    assert any("LOAD REPORT" in message for message in seen[1:])
    assert environment.package_version("no-such-dist-abc") == "not installed"
