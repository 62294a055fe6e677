"""The local hub of the online rehearsal (tests/online), and the protocol it relies on.

huggingface_hub and transformers download from the local hub exactly as from the real
one. The requests they make are pinned here, so a client upgrade that changes the
protocol (a new endpoint, a header, the cache layout) fails this test instead of the
rehearsal silently falling back to stand-ins.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import torch

from tests.online import imdb_replica, replicas
from tests.online.hub import LocalHub

ROOT = Path(__file__).resolve().parent.parent
OFFLINE_VARS = ("COURSE_OFFLINE", "HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")


def _tiny_gpt2_repo(folder: Path) -> Path:
    """A tiny GPT-2 repository with the real repository's file set and the real tokenizer."""
    from safetensors.torch import save_model
    from transformers import GPT2Config, GPT2LMHeadModel, GPT2Tokenizer

    from course_utils.checkpoints import _gpt2_bpe_files

    folder.mkdir(parents=True)
    vocab, merges = _gpt2_bpe_files()
    shutil.copy2(vocab, folder / "vocab.json")
    shutil.copy2(merges, folder / "merges.txt")
    replicas._tokenizer_json(GPT2Tokenizer(vocab=str(vocab), merges=str(merges)), folder)
    config = {**replicas.GPT2_CONFIG, "n_layer": 1, "n_head": 2, "n_embd": 16}
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "generation_config.json").write_text(json.dumps(replicas.GPT2_GENERATION_CONFIG))
    (folder / "tokenizer_config.json").write_text(json.dumps({"model_max_length": 1024}))
    torch.manual_seed(0)
    save_model(GPT2LMHeadModel(GPT2Config(**config)), str(folder / "model.safetensors"), metadata={"format": "pt"})
    return folder


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    root = tmp_path_factory.mktemp("hub")
    repo = _tiny_gpt2_repo(root / "gpt2")
    plain = root / "archive.tar.gz"
    plain.write_bytes(bytes(range(256)) * 40)
    with LocalHub({"gpt2": repo}, files={"archive.tar.gz": plain}) as running:
        yield running


def _open(url: str, method: str = "GET", headers: dict | None = None):
    request = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        return urllib.request.urlopen(request, timeout=10)
    except urllib.error.HTTPError as error:
        return error


def test_resolve_answers_with_the_headers_of_the_hub(hub):
    repo = hub.repos["gpt2"]
    config = (repo.folder / "config.json").read_bytes()
    answer = _open(f"{hub.url}/gpt2/resolve/main/config.json", "HEAD")
    assert answer.status == 200 and hub.url.startswith("http://127.0.0.1:")
    assert answer.headers["X-Repo-Commit"] == repo.commit and len(repo.commit) == 40
    blob = hashlib.sha1(b"blob %d\0" % len(config) + config).hexdigest()  # git's blob id
    assert answer.headers["ETag"] == f'"{blob}"' and answer.headers["Content-Length"] == str(len(config))
    assert "X-Linked-Etag" not in answer.headers  # a regular file, not LFS
    assert _open(f"{hub.url}/gpt2/resolve/{repo.commit}/config.json").read() == config

    weights = repo.folder / "model.safetensors"
    answer = _open(f"{hub.url}/gpt2/resolve/main/model.safetensors", "HEAD")
    assert answer.headers["X-Linked-Etag"] == f'"{hashlib.sha256(weights.read_bytes()).hexdigest()}"'
    assert answer.headers["X-Linked-Size"] == str(weights.stat().st_size)

    part = _open(f"{hub.url}/gpt2/resolve/main/model.safetensors", headers={"Range": "bytes=10-19"})
    assert part.status == 206 and part.read() == weights.read_bytes()[10:20]
    assert part.headers["Content-Range"] == f"bytes 10-19/{weights.stat().st_size}"


def test_errors_carry_the_hub_error_codes(hub):
    missing = _open(f"{hub.url}/gpt2/resolve/main/pytorch_model.bin", "HEAD")
    assert (missing.status, missing.headers["X-Error-Code"]) == (404, "EntryNotFound")
    assert missing.headers["X-Repo-Commit"] == hub.repos["gpt2"].commit  # the client caches the absence
    unknown = _open(f"{hub.url}/no-such-model/resolve/main/config.json", "HEAD")
    assert (unknown.status, unknown.headers["X-Error-Code"]) == (401, "RepoNotFound")
    revision = _open(f"{hub.url}/gpt2/resolve/v9/config.json", "HEAD")
    assert (revision.status, revision.headers["X-Error-Code"]) == (404, "RevisionNotFound")


def test_model_info_tree_and_plain_files(hub):
    info = json.load(_open(f"{hub.url}/api/models/gpt2/revision/main"))
    assert info["sha"] == hub.repos["gpt2"].commit and info["id"] == "gpt2"
    assert {s["rfilename"] for s in info["siblings"]} == set(hub.repos["gpt2"].files)
    assert info["safetensors"]["total"] == sum(p.numel() for p in _tiny_model_parameters())
    tree = json.load(_open(f"{hub.url}/api/models/gpt2/tree/main"))
    assert {e["path"]: "lfs" in e for e in tree}["model.safetensors"] is True
    assert _open(f"{hub.url}/api/models/gpt2/tree/main/additional_chat_templates").status == 404
    plain = _open(hub.file_url("archive.tar.gz"))
    assert plain.read() == bytes(range(256)) * 40 and plain.headers["Content-Length"] == "10240"


def _tiny_model_parameters():
    from transformers import GPT2Config, GPT2LMHeadModel

    config = {**replicas.GPT2_CONFIG, "n_layer": 1, "n_head": 2, "n_embd": 16}
    with torch.device("meta"):
        model = GPT2LMHeadModel(GPT2Config(**config))
    seen = set()
    for p in model.parameters():  # tied embeddings counted once, as safetensors stores them
        if id(p) not in seen:
            seen.add(id(p))
            yield p


CLIENT = r"""
import json, os, sys
import course_utils
from huggingface_hub import get_hf_file_metadata, hf_hub_url
from transformers import AutoModelForCausalLM, AutoTokenizer, pipeline

name = course_utils.checkpoint("gpt2")
tokenizer = AutoTokenizer.from_pretrained(name)
model = AutoModelForCausalLM.from_pretrained(name)
generator = pipeline("text-generation", model=name)
out = generator("Let us", max_new_tokens=2, do_sample=False, pad_token_id=tokenizer.eos_token_id)
meta = get_hf_file_metadata(hf_hub_url("gpt2", "model.safetensors"))
print(json.dumps({"checkpoint": name, "ids": tokenizer("Let us encode this sentence")["input_ids"],
                  "commit": meta.commit_hash, "etag": meta.etag, "size": meta.size,
                  "generated": isinstance(out[0]["generated_text"], str)}))
"""

# What huggingface_hub 2.4 / transformers 5.23 ask the hub for, as (method, route). If a client
# upgrade changes this set, read its source again and update tests/online/hub.py to match.
EXPECTED_ROUTES = {
    ("HEAD", "model-info"),  # course_utils.checkpoints.hub_answers, the probe
    ("GET", "model-info"),  # main -> commit hash before the first file; pipeline(): the task
    ("HEAD", "resolve-commit"),  # file metadata: X-Repo-Commit, ETag, size
    ("GET", "resolve-commit"),  # the bytes
    ("GET", "tree"),  # tokenizer: additional chat templates
    ("HEAD", "resolve-main"),  # get_hf_file_metadata(hf_hub_url(...)) in CLIENT itself
}
OPTIONAL_ROUTES = {
    ("GET", "model-info-revision"),  # main -> commit hash when a model class loads first
    ("GET", "agent-harnesses"),  # fetched at most once a day
}


def _route(path: str, commit: str) -> str:
    if path == "/api/agent-harnesses":
        return "agent-harnesses"
    if re.fullmatch(r"/api/models/gpt2", path):
        return "model-info"
    if re.fullmatch(r"/api/models/gpt2/revision/main", path):
        return "model-info-revision"
    if path.startswith("/api/models/gpt2/tree/main"):
        return "tree"
    if path.startswith(f"/gpt2/resolve/{commit}/"):
        return "resolve-commit"
    if path.startswith("/gpt2/resolve/main/"):
        return "resolve-main"
    return "unknown " + path


def test_huggingface_hub_and_transformers_download_from_it(hub, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in OFFLINE_VARS}
    env.update(HF_ENDPOINT=hub.url, HF_HOME=str(tmp_path / "hf"), COURSE_CACHE_DIR=str(tmp_path / "course"),
               NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost", HF_HUB_DISABLE_TELEMETRY="1")
    env.pop("HF_HUB_CACHE", None)
    before = len(hub.requests)
    result = subprocess.run([sys.executable, "-c", CLIENT], env=env, capture_output=True, text=True, timeout=300,
                            cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    repo = hub.repos["gpt2"]
    weights = repo.files["model.safetensors"]

    # course_utils took the online branch, and the real tokenizer came from the hub
    assert answer["checkpoint"] == "gpt2"
    assert answer["ids"] == [5756, 514, 37773, 428, 6827]
    assert (answer["commit"], answer["etag"], answer["size"]) == (repo.commit, weights.sha256, weights.size)
    assert answer["generated"] is True

    requests = hub.requests[before:]
    routes = {(r.method, _route(r.path, repo.commit)) for r in requests}
    unknown = sorted(r for r in routes - EXPECTED_ROUTES - OPTIONAL_ROUTES)
    assert not unknown, f"the client asked for routes the pin does not know: {unknown}"
    assert EXPECTED_ROUTES <= routes, f"the client no longer asks for {sorted(EXPECTED_ROUTES - routes)}"
    assert all(r.status < 500 for r in requests)
    downloads = [r for r in requests if _route(r.path, repo.commit) == "resolve-commit"]
    fetched = {r.path.rsplit("/", 1)[1] for r in downloads if r.method == "GET" and r.status == 200}
    assert {"config.json", "model.safetensors", "generation_config.json", "tokenizer.json",
            "tokenizer_config.json"} <= fetched
    heads = [r for r in downloads if r.method == "HEAD"]
    assert all(r.headers.get("accept-encoding") == "identity" for r in heads)  # sizes must be exact
    agents = [r.headers.get("user-agent", "") for r in downloads]
    assert all("hf_hub/" in agent for agent in agents) and any("transformers/" in agent for agent in agents)

    # the Hugging Face cache layout the course's cached_snapshot() reads
    cache = tmp_path / "hf" / "hub" / "models--gpt2"
    assert (cache / "refs" / "main").read_text() == repo.commit
    assert (cache / "blobs" / weights.sha256).stat().st_size == weights.size  # LFS blobs by SHA-256
    assert (cache / "blobs" / repo.files["config.json"].git_sha1).is_file()  # regular files by git id
    assert (cache / "snapshots" / repo.commit / "config.json").is_file()
    assert (cache / ".no_exist" / repo.commit / "chat_template.jinja").exists()  # 404s cached as absent


@pytest.mark.parametrize("name", sorted(replicas.REPLICAS))
def test_replica_configs_have_the_published_parameter_counts(name):
    from transformers import AutoConfig, AutoModel

    source = {"gpt2": replicas.GPT2_CONFIG, "bert-base-uncased": replicas.BERT_CONFIG,
              "distilbert-base-uncased": replicas.DISTILBERT_CONFIG,
              "facebook/bart-base": replicas.BART_BASE_CONFIG}[name]
    config = AutoConfig.for_model(source["model_type"], **{k: v for k, v in source.items() if k != "model_type"})
    with torch.device("meta"):  # shapes only: instant
        model = AutoModel.from_config(config)
    assert sum(p.numel() for p in model.parameters()) == replicas.PARAMETERS[name]


def test_bart_vocabulary_has_the_real_layout():
    vocab, merges = replicas.bart_vocab()
    assert len(vocab) == replicas.BART_BASE_CONFIG["vocab_size"] == 50265
    assert [vocab[t] for t in ("<s>", "<pad>", "</s>", "<unk>", "<mask>")] == [0, 1, 2, 3, 50264]
    assert len(merges) == 50000


def test_imdb_review_lengths_follow_the_published_statistics():
    rng = random.Random(1)
    lengths = sorted(imdb_replica.review_length(rng) for _ in range(20000))
    median, mean = lengths[len(lengths) // 2], sum(lengths) / len(lengths)
    assert abs(median - 174) < 6 and abs(mean - 230) < 8
    assert lengths[0] >= 10 and lengths[-1] <= 2470
    # reviews made of whole sentences keep those lengths
    words = [f"w{i}" for i in range(50)]
    sentences = [" ".join(rng.choices(words, k=rng.randint(5, 35))) + "." for _ in range(500)]
    made = [imdb_replica.make_review(rng, sentences, sentences[:50]) for _ in range(2000)]
    made_lengths = sorted(len(r.replace("<br /><br />", " ").split()) for r in made)
    assert abs(made_lengths[1000] - 174) < 15 and abs(sum(made_lengths) / 2000 - 230) < 15
    with_breaks = sum("<br /><br />" in r for r in made) / len(made)
    assert 0.5 < with_breaks < 0.95  # most, not all, real reviews have paragraph breaks


def test_rehearsal_cells_catch_a_checkpoint_that_went_offline(monkeypatch, capsys):
    import pandas as pd

    import course_utils
    from course_utils import checkpoints, data
    from tests.online import rehearsal

    answers = {"gpt2": "gpt2", "bert-base-uncased": "/cache/checkpoints/bert-base-uncased-standin"}
    table = pd.DataFrame({"review": ["fine"], "sentiment": [1]})
    table.attrs["source"] = "imdb"
    # the added cells patch these module attributes: monkeypatch puts them back afterwards
    monkeypatch.setattr(checkpoints, "checkpoint", lambda name: answers[name])
    monkeypatch.setattr(course_utils, "checkpoint", checkpoints.checkpoint)
    monkeypatch.setattr(data, "load_imdb", lambda: table)

    namespace: dict = {}
    exec(rehearsal.RECORD_CELL, namespace)
    assert course_utils.checkpoint("gpt2") == "gpt2" and data.load_imdb() is table
    exec(rehearsal.CHECK_CELL, namespace)  # online branch everywhere: passes
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith(rehearsal.MARK)
    assert json.loads(line[len(rehearsal.MARK):])["checkpoints"] == ["gpt2"]

    course_utils.checkpoint("bert-base-uncased")  # a stand-in folder: the check must fail
    with pytest.raises(AssertionError, match="bert-base-uncased"):
        exec(rehearsal.CHECK_CELL, namespace)
    table.attrs["source"] = "generated"
    namespace["_rh_calls"]["checkpoint"].pop()
    data.load_imdb()
    with pytest.raises(AssertionError, match="generated"):
        exec(rehearsal.CHECK_CELL, namespace)


def test_only_the_named_learned_weights_assert_may_fail_in_the_rehearsal():
    from tests.online import rehearsal

    (notebook, cell_id), line = next(iter(rehearsal.NEEDS_LEARNED_WEIGHTS.items()))
    cell = {"id": cell_id}
    failed = {"ename": "AssertionError", "traceback": ["\x1b[0;31m----> 9\x1b[0m " + line + " and more"]}
    assert rehearsal._needs_learned_weights(notebook, cell, failed)
    other_line = {**failed, "traceback": ["----> 8 assert abs(untrained['loss'] - 10.3) < 1.0"]}
    assert not rehearsal._needs_learned_weights(notebook, cell, other_line)
    assert not rehearsal._needs_learned_weights(notebook, cell, {**failed, "ename": "NameError"})
    assert not rehearsal._needs_learned_weights(notebook, {"id": "another-cell"}, failed)
