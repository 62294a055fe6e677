"""Pretraining in miniature: the offline GPT-2 and BERT stand-ins learn from real English, deterministically.

The text is the VADER research data (`course_utils.data.load_vader`): movie-review
sentences, New York Times editorial, Amazon review and tweet snippets. A fixed ~10% of
the sentences (chosen by a hash of their text, so the split never depends on order or
on the machine) is held out: no stand-in ever trains on `heldout_sentences()`, so
notebooks can measure the stand-ins on text they have not seen.

Builds pin their own thread count (BUILD_THREADS), seeds and data order, so the same
weights come out whatever `torch.get_num_threads()` the caller runs with.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import random
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator, Sequence

import torch
import torch.nn.functional as F

TEXT_KINDS = ("movie", "nyt", "amazon", "tweets")
HELDOUT_SHARE = 26 / 256  # ~10%: sentences whose SHA-256 starts with a byte < 26
# Pinned: a build from a 16-thread JupyterLab and one under OMP_NUM_THREADS=1 give the same bytes.
# One thread also keeps a build on a busy shared machine (JupyterHub, CI with parallel workers)
# from stalling on oversubscribed OpenMP barriers.
BUILD_THREADS = 1
TRAINING_LOG = "training.json"  # what the build did (steps, losses), saved next to the weights


@dataclass(frozen=True)
class GPT2Recipe:
    """Size and training schedule of the GPT-2 stand-in."""

    n_layer: int = 4
    n_embd: int = 64
    n_head: int = 4
    steps: int = 300
    batch_size: int = 32
    max_tokens: int = 48  # per sentence, end-of-text token included
    lr: float = 1e-2
    warmup: int = 20
    seed: int = 0


@dataclass(frozen=True)
class BertRecipe:
    """Size and training schedule of the BERT stand-in (MLM 15% / 80-10-10 and NSP)."""

    n_layer: int = 2
    hidden: int = 128
    n_head: int = 4
    steps: int = 300
    batch_size: int = 32
    max_tokens: int = 64  # per pair, [CLS] and [SEP]s included
    lr: float = 3e-3
    warmup: int = 20
    seed: int = 0


GPT2_RECIPE = GPT2Recipe()
BERT_RECIPE = BertRecipe()


# ----------------------------------------------------------------------------- the text


def is_heldout(text: str) -> bool:
    """True for the ~10% of sentences no stand-in trains on (decided by a hash of the text alone)."""
    return hashlib.sha256(text.strip().encode("utf-8")).digest()[0] < round(HELDOUT_SHARE * 256)


def _sentences(kind: str) -> list[str]:
    from .data import load_vader

    return [text.strip() for text in load_vader(kind)["text"] if text.strip()]


def training_sentences(kinds: Sequence[str] = TEXT_KINDS) -> list[str]:
    """The sentences the stand-ins train on, in file order (held-out ones removed)."""
    return [text for kind in kinds for text in _sentences(kind) if not is_heldout(text)]


def heldout_sentences(kind: str = "movie") -> list[str]:
    """Sentences of `kind` ("movie", "nyt", "amazon", "tweets") that no stand-in has trained on."""
    return [text for text in _sentences(kind) if is_heldout(text)]


def _documents(kind: str) -> list[list[str]]:
    """Training sentences grouped by document (ids `doc_sentence`), in order: material for NSP pairs."""
    from .data import load_vader

    documents: dict[str, list[str]] = {}
    for row_id, text in zip(load_vader(kind)["id"], load_vader(kind)["text"]):
        if text.strip() and not is_heldout(text):
            documents.setdefault(str(row_id).split("_")[0], []).append(text.strip())
    return list(documents.values())


# ----------------------------------------------------------------------------- reproducible training


@contextlib.contextmanager
def pinned_threads(n: int = BUILD_THREADS) -> Iterator[None]:
    """Run the block with exactly `n` torch threads and fresh, restored RNG state."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        with torch.random.fork_rng(devices=[]):
            yield
    finally:
        torch.set_num_threads(before)


def _schedule(step: int, warmup: int, steps: int) -> float:
    """Learning-rate factor: linear warm-up, then cosine decay to 10%."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))


def _optimizer(params: list[torch.nn.Parameter], lr: float, warmup: int, steps: int):
    decay = [p for p in params if p.dim() >= 2]  # matrices decay; biases and norms do not
    no_decay = [p for p in params if p.dim() < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=lr, betas=(0.9, 0.95))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: _schedule(s, warmup, steps))
    return optimizer, scheduler


def _batches(n_items: int, batch_size: int, seed: int) -> Iterator[list[int]]:
    """Endless epochs of shuffled index batches (Python's RNG: the same order everywhere)."""
    rng = random.Random(seed)
    order = list(range(n_items))
    while True:
        rng.shuffle(order)
        for start in range(0, n_items - batch_size + 1, batch_size):
            yield order[start:start + batch_size]


def _pad(rows: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(row) for row in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, :len(row)] = torch.tensor(row)
        mask[i, :len(row)] = 1
    return ids, mask


def _progress(total: int, desc: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, disable=not enabled, leave=False)


# ----------------------------------------------------------------------------- GPT-2


def train_gpt2(model, tokenizer, sentences: Sequence[str], recipe: GPT2Recipe = GPT2_RECIPE,
               progress: bool = True) -> dict:
    """Train a GPT2LMHeadModel on `sentences` (next-token prediction, one sentence per row); return a log.

    Tokens that never occur in the text are trained as ONE shared output row (its logit counted
    once per such token), so the softmax over all 50,257 ids stays exact while costing about
    half: those ids are tied to one embedding in the saved model.
    """
    eos = tokenizer.eos_token_id
    rows = [ids[:recipe.max_tokens - 1] + [eos] for ids in tokenizer(list(sentences))["input_ids"]]
    vocab = model.config.vocab_size
    seen = torch.tensor(sorted({i for row in rows for i in row}))
    unseen = torch.ones(vocab, dtype=torch.bool)
    unseen[seen] = False
    position = torch.full((vocab,), -1, dtype=torch.long)
    position[seen] = torch.arange(len(seen))  # token id -> its row among the trained logits
    shared = torch.nn.Parameter(model.transformer.wte.weight.detach()[unseen].mean(0).clone())
    offset = torch.zeros(len(seen) + 1)
    offset[-1] = math.log(max(1, int(unseen.sum())))  # the shared row stands for that many tokens

    params = list(model.parameters()) + [shared]
    optimizer, scheduler = _optimizer(params, recipe.lr, recipe.warmup, recipe.steps)
    batches = _batches(len(rows), recipe.batch_size, recipe.seed)
    losses, tokens = [], 0
    model.train()
    with _progress(recipe.steps, "pretraining the GPT-2 stand-in", progress) as bar:
        for _ in range(recipe.steps):
            ids, mask = _pad([rows[i] for i in next(batches)], eos)
            hidden = model.transformer(input_ids=ids, attention_mask=mask).last_hidden_state
            keep = mask[:, 1:].bool()  # predict every real next token, never padding
            outputs = torch.cat([model.transformer.wte.weight[seen], shared[None]])  # tied output rows
            logits = F.linear(hidden[:, :-1][keep], outputs) + offset
            loss = F.cross_entropy(logits, position[ids[:, 1:][keep]])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            scheduler.step()
            losses.append(round(loss.item(), 4))
            tokens += int(keep.sum())
            bar.update()
            bar.set_postfix(loss=f"{loss.item():.2f}", refresh=False)
    model.eval()
    with torch.no_grad():
        model.transformer.wte.weight[unseen] = shared  # every never-seen id gets the shared row
    return {"steps": recipe.steps, "sentences": len(rows), "tokens_seen": tokens,
            "distinct_tokens": len(seen), "first_loss": losses[0], "last_loss": losses[-1],
            "losses": losses, "recipe": asdict(recipe)}


def perplexity(model, tokenizer, sentences: Sequence[str]) -> float:
    """exp(mean negative log-likelihood per predicted token), each sentence scored on its own."""
    total, count = 0.0, 0
    model.eval()
    with torch.no_grad():
        for text in sentences:
            ids = tokenizer(text, return_tensors="pt")["input_ids"].to(model.device)
            if ids.shape[1] < 2:
                continue
            loss = model(input_ids=ids, labels=ids).loss
            total += loss.item() * (ids.shape[1] - 1)
            count += ids.shape[1] - 1
    return math.exp(total / count)


# ----------------------------------------------------------------------------- BERT


def _nsp_examples(tokenizer, recipe: BertRecipe) -> list[tuple[list[int], list[int], int]]:
    """(ids, token_type_ids, NSP label) for every training pair, with course_utils.mlm's NSP recipe."""
    from .mlm import nsp_pairs

    documents = [doc for kind in TEXT_KINDS for doc in _documents(kind)]
    multi = [doc for doc in documents if len(doc) > 1]  # movie sentences are one per document
    pairs = nsp_pairs(multi, seed=recipe.seed)
    singles = [doc[0] for doc in documents if len(doc) == 1]
    rng = random.Random(recipe.seed)
    rng.shuffle(singles)
    # Sentences without a successor still teach MLM: paired with a random one, labelled NotNext.
    pairs += [(a, b, 1) for a, b in zip(singles[0::2], singles[1::2])]
    encoded = tokenizer([a for a, _, _ in pairs], [b for _, b, _ in pairs], truncation="longest_first",
                        max_length=recipe.max_tokens)
    return list(zip(encoded["input_ids"], encoded["token_type_ids"], [label for _, _, label in pairs]))


def train_bert(model, tokenizer, recipe: BertRecipe = BERT_RECIPE, progress: bool = True) -> dict:
    """Train a BertForPreTraining with MLM (15%, 80-10-10) and NSP on the training sentences; return a log."""
    from .mlm import mask_tokens

    examples = _nsp_examples(tokenizer, recipe)
    optimizer, scheduler = _optimizer(list(model.parameters()), recipe.lr, recipe.warmup, recipe.steps)
    batches = _batches(len(examples), recipe.batch_size, recipe.seed)
    generator = torch.Generator().manual_seed(recipe.seed)
    special = set(tokenizer.all_special_ids)
    losses, mlm_losses = [], []
    model.train()
    with _progress(recipe.steps, "pretraining the BERT stand-in", progress) as bar:
        for _ in range(recipe.steps):
            chosen = [examples[i] for i in next(batches)]
            ids, mask = _pad([e[0] for e in chosen], tokenizer.pad_token_id)
            types, _ = _pad([e[1] for e in chosen], 0)
            nsp_labels = torch.tensor([e[2] for e in chosen])
            specials = torch.isin(ids, torch.tensor(sorted(special)))
            corrupted, labels = mask_tokens(ids, specials, tokenizer.mask_token_id, model.config.vocab_size,
                                            generator=generator)
            hidden, pooled = model.bert(input_ids=corrupted, attention_mask=mask, token_type_ids=types,
                                        return_dict=False)[:2]
            selected = labels != -100  # score only the selected positions: same loss, ~7x fewer logits
            scores = model.cls.predictions(hidden[selected])
            mlm_loss = F.cross_entropy(scores, labels[selected])
            nsp_loss = F.cross_entropy(model.cls.seq_relationship(pooled), nsp_labels)
            loss = mlm_loss + nsp_loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            losses.append(round(loss.item(), 4))
            mlm_losses.append(round(mlm_loss.item(), 4))
            bar.update()
            bar.set_postfix(mlm=f"{mlm_loss.item():.2f}", refresh=False)
    model.eval()
    return {"steps": recipe.steps, "pairs": len(examples), "first_mlm_loss": mlm_losses[0],
            "last_mlm_loss": mlm_losses[-1], "losses": losses, "recipe": asdict(recipe)}


def masked_word_accuracy(model, tokenizer, sentences: Sequence[str], k: int = 5, seed: int = 0,
                         batch_size: int = 64) -> float:
    """Share of masked tokens whose true id is among the model's top-k, masking one random word piece per sentence.

    Each sentence gets exactly one [MASK], at a position drawn with `seed` among its
    non-special tokens; the model sees the rest of the sentence. `model` is a
    BertForMaskedLM or BertForPreTraining; only the masked positions are scored.
    """
    rng = random.Random(seed)
    rows, where, answers = [], [], []
    for ids in tokenizer(list(sentences), truncation=True, max_length=128)["input_ids"]:
        if len(ids) < 3:
            continue
        position = rng.randrange(1, len(ids) - 1)  # never [CLS] or [SEP]
        answers.append(ids[position])
        rows.append(ids[:position] + [tokenizer.mask_token_id] + ids[position + 1:])
        where.append(position)
    hits = 0
    model.eval()
    with torch.no_grad():
        for start in range(0, len(rows), batch_size):
            ids, mask = _pad(rows[start:start + batch_size], tokenizer.pad_token_id)
            hidden = model.bert(input_ids=ids.to(model.device), attention_mask=mask.to(model.device))[0]
            chosen = hidden[torch.arange(len(ids)), torch.tensor(where[start:start + batch_size])]
            top = model.cls.predictions(chosen).topk(k).indices.cpu()
            hits += int((top == torch.tensor(answers[start:start + batch_size])[:, None]).any(1).sum())
    return hits / len(rows)
