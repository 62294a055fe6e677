"""Full-size replicas of the hub repositories the course downloads online.

Each replica is what `from_pretrained` finds in the real repository, except the weights:
the real config.json (field by field, written out below), the real tokenizer files (the
ones the course already has offline), and seeded random weights of exactly the real
shapes in model.safetensors. Built once into `replica_root()` and reused.

    python -m tests.online.replicas          # build all four and print their sizes

Sources of the configurations: the config.json / generation_config.json /
tokenizer_config.json files of the hub repositories gpt2, bert-base-uncased,
distilbert-base-uncased and facebook/bart-base as published (reproduced from their
well-known content; bart-base's repository has no tokenizer_config.json and no
generation_config.json, its generation settings live in config.json).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[2]
REPLICA_VERSION = 1  # bump when a builder changes: old replicas are rebuilt

GPT2_CONFIG = {
    "activation_function": "gelu_new",
    "architectures": ["GPT2LMHeadModel"],
    "attn_pdrop": 0.1,
    "bos_token_id": 50256,
    "embd_pdrop": 0.1,
    "eos_token_id": 50256,
    "initializer_range": 0.02,
    "layer_norm_epsilon": 1e-05,
    "model_type": "gpt2",
    "n_ctx": 1024,
    "n_embd": 768,
    "n_head": 12,
    "n_layer": 12,
    "n_positions": 1024,
    "resid_pdrop": 0.1,
    "summary_activation": None,
    "summary_first_dropout": 0.1,
    "summary_proj_to_labels": True,
    "summary_type": "cls_index",
    "summary_use_proj": True,
    "task_specific_params": {"text-generation": {"do_sample": True, "max_length": 50}},
    "vocab_size": 50257,
}
GPT2_GENERATION_CONFIG = {
    "_from_model_config": True,
    "bos_token_id": 50256,
    "eos_token_id": 50256,
    "transformers_version": "4.26.0.dev0",
}
BERT_CONFIG = {
    "architectures": ["BertForMaskedLM"],
    "attention_probs_dropout_prob": 0.1,
    "gradient_checkpointing": False,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1,
    "hidden_size": 768,
    "initializer_range": 0.02,
    "intermediate_size": 3072,
    "layer_norm_eps": 1e-12,
    "max_position_embeddings": 512,
    "model_type": "bert",
    "num_attention_heads": 12,
    "num_hidden_layers": 12,
    "pad_token_id": 0,
    "position_embedding_type": "absolute",
    "transformers_version": "4.6.0.dev0",
    "type_vocab_size": 2,
    "use_cache": True,
    "vocab_size": 30522,
}
DISTILBERT_CONFIG = {
    "activation": "gelu",
    "architectures": ["DistilBertForMaskedLM"],
    "attention_dropout": 0.1,
    "dim": 768,
    "dropout": 0.1,
    "hidden_dim": 3072,
    "initializer_range": 0.02,
    "max_position_embeddings": 512,
    "model_type": "distilbert",
    "n_heads": 12,
    "n_layers": 6,
    "pad_token_id": 0,
    "qa_dropout": 0.1,
    "seq_classif_dropout": 0.2,
    "sinusoidal_pos_embds": False,
    "tie_weights_": True,
    "transformers_version": "4.10.0.dev0",
    "vocab_size": 30522,
}
BART_BASE_CONFIG = {
    "_name_or_path": "bart-base",
    "activation_dropout": 0.1,
    "activation_function": "gelu",
    "add_bias_logits": False,
    "add_final_layer_norm": False,
    "architectures": ["BartModel"],
    "attention_dropout": 0.1,
    "bos_token_id": 0,
    "classif_dropout": 0.1,
    "classifier_dropout": 0.0,
    "d_model": 768,
    "decoder_attention_heads": 12,
    "decoder_ffn_dim": 3072,
    "decoder_layerdrop": 0.0,
    "decoder_layers": 6,
    "decoder_start_token_id": 2,
    "dropout": 0.1,
    "early_stopping": True,
    "encoder_attention_heads": 12,
    "encoder_ffn_dim": 3072,
    "encoder_layerdrop": 0.0,
    "encoder_layers": 6,
    "eos_token_id": 2,
    "forced_bos_token_id": 0,
    "forced_eos_token_id": 2,
    "gradient_checkpointing": False,
    "id2label": {"0": "LABEL_0", "1": "LABEL_1", "2": "LABEL_2"},
    "init_std": 0.02,
    "is_encoder_decoder": True,
    "label2id": {"LABEL_0": 0, "LABEL_1": 1, "LABEL_2": 2},
    "max_position_embeddings": 1024,
    "model_type": "bart",
    "no_repeat_ngram_size": 3,
    "normalize_before": False,
    "normalize_embedding": True,
    "num_beams": 4,
    "num_hidden_layers": 6,
    "pad_token_id": 1,
    "scale_embedding": False,
    "task_specific_params": {
        "summarization": {"length_penalty": 1.0, "max_length": 128, "min_length": 12, "num_beams": 4},
        "summarization_cnn": {"length_penalty": 2.0, "max_length": 142, "min_length": 56, "num_beams": 4},
        "summarization_xsum": {"length_penalty": 1.0, "max_length": 62, "min_length": 11, "num_beams": 6},
    },
    "torch_dtype": "float32",
    "transformers_version": "4.12.0.dev0",
    "use_cache": True,
    "vocab_size": 50265,
}

# Parameter counts of the base models (no task head), as commonly published and as
# `sum(p.numel() for p in AutoModel.from_pretrained(name).parameters())` gives for the real
# checkpoints: GPT-2 small 124,439,808; BERT-base uncased 109,482,240 (with pooler);
# DistilBERT base uncased 66,362,880; BART-base 139,420,416 (BartModel, shared embeddings
# counted once: 50,265 x 768 tokens, 2 x 1,026 x 768 learned positions, 6 + 6 layers).
PARAMETERS = {
    "gpt2": 124_439_808,
    "bert-base-uncased": 109_482_240,
    "distilbert-base-uncased": 66_362_880,
    "facebook/bart-base": 139_420_416,
}


def replica_root() -> Path:
    """Where replicas are built: COURSE_REPLICA_DIR, else data/cache/online-replicas (git-ignored)."""
    configured = os.environ.get("COURSE_REPLICA_DIR")
    return Path(configured).expanduser() if configured else ROOT / "data" / "cache" / "online-replicas"


def _write_json(path: Path, payload: dict) -> None:
    path.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _save_weights(model, target: Path) -> None:
    """model.safetensors with the real checkpoint's metadata; tied tensors stored once."""
    from safetensors.torch import save_model

    save_model(model, str(target / "model.safetensors"), metadata={"format": "pt"})


def _base_parameters(model) -> int:
    return sum(p.numel() for p in model.base_model.parameters())


def _tokenizer_json(tokenizer, target: Path) -> None:
    """tokenizer.json as the real repositories have it (the fast tokenizer's serialisation)."""
    with tempfile.TemporaryDirectory() as scratch:
        tokenizer.save_pretrained(scratch)
        shutil.copy2(Path(scratch) / "tokenizer.json", target / "tokenizer.json")


def _build_gpt2(target: Path) -> int:
    from transformers import GPT2Config, GPT2LMHeadModel, GPT2Tokenizer

    from course_utils.checkpoints import _gpt2_bpe_files

    vocab, merges = _gpt2_bpe_files()
    shutil.copy2(vocab, target / "vocab.json")
    shutil.copy2(merges, target / "merges.txt")
    _tokenizer_json(GPT2Tokenizer(vocab=str(vocab), merges=str(merges)), target)
    _write_json(target / "tokenizer_config.json", {"model_max_length": 1024})
    _write_json(target / "config.json", GPT2_CONFIG)
    _write_json(target / "generation_config.json", GPT2_GENERATION_CONFIG)
    model = GPT2LMHeadModel(GPT2Config.from_pretrained(target))
    _save_weights(model, target)
    return _base_parameters(model)


def _bert_tokenizer_files(target: Path) -> None:
    from transformers import BertTokenizer

    from course_utils.checkpoints import _minilm_dir

    vocab = _minilm_dir() / "vocab.txt"  # the bert-base-uncased WordPiece vocabulary
    shutil.copy2(vocab, target / "vocab.txt")
    _tokenizer_json(BertTokenizer(vocab=str(vocab), do_lower_case=True), target)
    _write_json(target / "tokenizer_config.json", {"do_lower_case": True, "model_max_length": 512})


def _build_bert(target: Path) -> int:
    from transformers import BertConfig, BertForPreTraining

    _bert_tokenizer_files(target)
    _write_json(target / "config.json", BERT_CONFIG)
    # the real checkpoint carries both pre-training heads (MLM and next-sentence prediction)
    model = BertForPreTraining(BertConfig.from_pretrained(target))
    _save_weights(model, target)
    return _base_parameters(model)


def _build_distilbert(target: Path) -> int:
    from transformers import DistilBertConfig, DistilBertForMaskedLM

    _bert_tokenizer_files(target)
    _write_json(target / "config.json", DISTILBERT_CONFIG)
    model = DistilBertForMaskedLM(DistilBertConfig.from_pretrained(target))
    _save_weights(model, target)
    return _base_parameters(model)


def bart_vocab() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """bart-base's vocabulary layout with GPT-2's pieces: specials, pieces, fairseq padding, <mask>.

    The real vocab.json numbers GPT-2's pieces in fairseq's order, which is not available
    offline; here they keep GPT-2's order (shifted by 4). The layout around them is the real
    one: <s> <pad> </s> <unk> = 0..3, fairseq's three "madeupword" padding entries, and
    <mask> = 50264, so len(vocab) == vocab_size == 50265 as in bart-base.
    """
    from course_utils.checkpoints import _gpt2_bpe_files

    encoder_json, merges = _gpt2_bpe_files()
    vocab = {token: i for i, token in enumerate(["<s>", "<pad>", "</s>", "<unk>"])}
    for token, i in json.loads(encoder_json.read_text(encoding="utf-8")).items():
        vocab[token] = i + 4
    for k in range(3):
        vocab[f"madeupword{k:04d}"] = len(vocab)
    vocab["<mask>"] = len(vocab)
    lines = merges.read_text(encoding="utf-8").splitlines()[1:]  # skip "#version"
    return vocab, [tuple(line.split(" ")) for line in lines if line]


def _build_bart(target: Path) -> int:
    from transformers import AddedToken, BartConfig, BartForConditionalGeneration, BartTokenizer

    from course_utils.checkpoints import _gpt2_bpe_files

    vocab, pairs = bart_vocab()
    _write_json(target / "vocab.json", vocab)
    shutil.copy2(_gpt2_bpe_files()[1], target / "merges.txt")
    # as in bart-base, <mask> swallows the space before it
    tokenizer = BartTokenizer(vocab=vocab, merges=pairs, mask_token=AddedToken("<mask>", lstrip=True, rstrip=False))
    _tokenizer_json(tokenizer, target)
    _write_json(target / "config.json", BART_BASE_CONFIG)
    model = BartForConditionalGeneration(BartConfig.from_pretrained(target))
    _save_weights(model, target)
    return _base_parameters(model)


@dataclass(frozen=True)
class Replica:
    name: str
    build: Callable[[Path], int]  # fills a folder, returns the base model's parameter count


REPLICAS = {
    "gpt2": Replica("gpt2", _build_gpt2),
    "bert-base-uncased": Replica("bert-base-uncased", _build_bert),
    "distilbert-base-uncased": Replica("distilbert-base-uncased", _build_distilbert),
    "facebook/bart-base": Replica("facebook/bart-base", _build_bart),
}


def _readme(name: str, parameters: int) -> str:
    return (
        f"# {name} (local replica)\n\nA full-size replica of the hub repository `{name}` for the course's "
        "online rehearsal (tests/online): the real configuration and tokenizer files, "
        f"{parameters:,} parameters in the base model as in the real one, but SEEDED RANDOM WEIGHTS. "
        "Its outputs mean nothing; its shapes, sizes and speed are the real model's.\n"
    )


def build_replica(name: str, root: Path | None = None) -> Path:
    """Build (once) and return the replica folder of hub repository `name`."""
    import torch

    root = root or replica_root()
    target = root / f"v{REPLICA_VERSION}" / name.replace("/", "--")
    if (target / "model.safetensors").is_file() and (target / "README.md").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".building-", dir=target.parent))
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)  # the same replica weights on every machine
            parameters = REPLICAS[name].build(staging)
        if parameters != PARAMETERS[name]:
            raise AssertionError(
                f"the {name} replica has {parameters:,} parameters in its base model but the real one has "
                f"{PARAMETERS[name]:,}: its configuration in tests/online/replicas.py is wrong."
            )
        (staging / "README.md").write_text(_readme(name, parameters), encoding="utf-8")
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def build_all(root: Path | None = None) -> dict[str, Path]:
    """Build (once) every replica; return {hub name: folder}."""
    return {name: build_replica(name, root) for name in REPLICAS}


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    for hub_name, folder in build_all().items():
        size = sum(p.stat().st_size for p in folder.iterdir())
        print(f"{hub_name:>24}: {folder} ({size / 1e6:,.0f} MB)")
