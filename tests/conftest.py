import matplotlib

matplotlib.use("Agg")  # unit tests draw off-screen

import pytest  # noqa: E402


@pytest.fixture
def fresh_checkpoints(monkeypatch, tmp_path):
    """An empty cache and a process that has not probed the hub or announced anything yet."""
    from course_utils import checkpoints  # here, not at the top: the browser tests' processes never need torch

    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-hub"))
    monkeypatch.setattr(checkpoints, "_hub_answered", None)
    monkeypatch.setattr(checkpoints, "_announced", set())
    return tmp_path
