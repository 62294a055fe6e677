"""Pretraining in miniature: the offline GPT-2 and BERT stand-ins learn from real English, deterministically.

The text is the VADER research data (`course_utils.data.load_vader`): movie-review
sentences, New York Times editorial, Amazon review and tweet snippets. A fixed ~10% of
the sentences (chosen by a hash of their text, so the split never depends on order or
on the machine) is held out: no stand-in ever trains on `heldout_sentences()`, so
notebooks can measure the stand-ins on text they have not seen. The stand-ins train on
the movie-review sentences only (`GPT2Recipe.kinds`, `BertRecipe.kinds`): the notebooks
ask them about films, and a build of a minute or two on one CPU thread learns more from
one kind of text than from four.

Three things make such a short build learn more than word frequencies:

- a compact output layer: only tokens seen at least `min_count` times in the training
  text get a row of their own; every other id of the real vocabulary shares one row (its
  logit counted once per id it stands for, so the softmax over the full vocabulary stays
  exact). The saved model has the real vocabulary size, those ids tied to one embedding;
- token embeddings initialised larger than the 0.02 of the big models (`embedding_std`);
  BERT's position embeddings start as the sinusoids of notebook 02 (then are learned);
- GPT-2: each next-token target is blended with the text's bigram statistics
  (`bigram_weight`: the distribution of the tokens that follow the current one in the
  training text), a cheap teacher that gives every position a full distribution to learn
  from; BERT: twice BERT's share of masked targets per sentence (`mlm_probability`).

Builds pin their own thread count (BUILD_THREADS), seeds and data order, so the same
weights come out whatever `torch.get_num_threads()` the caller runs with.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import math
import random
from collections import Counter
from dataclasses import asdict, dataclass
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
    """Size, text and training schedule of the GPT-2 stand-in."""

    n_layer: int = 4
    n_embd: int = 64
    n_head: int = 4
    steps: int = 500
    batch_size: int = 16
    max_tokens: int = 48  # per sentence, end-of-text token included
    lr: float = 1e-2
    warmup: int = 20
    seed: int = 0
    kinds: tuple[str, ...] = ("movie",)  # the text it trains on (see TEXT_KINDS)
    min_count: int = 3  # rarer tokens share one output row with the never-seen ones
    embedding_std: float = 0.1  # initial token embeddings (the real GPT-2 starts from 0.02)
    bigram_weight: float = 0.8  # share of each target taken from the text's bigram statistics


@dataclass(frozen=True)
class BertRecipe:
    """Size, text and training schedule of the BERT stand-in (masked-word prediction, 80-10-10).

    No next-sentence prediction: the movie-review sentences are independent snippets with no
    successor, and NSP on product-review pairs stayed at chance (loss ln 2) in a build this
    short, so the NSP head of the saved BertForPreTraining keeps its initial weights.
    """

    n_layer: int = 2
    hidden: int = 64
    n_head: int = 4
    steps: int = 1600
    batch_size: int = 16
    max_tokens: int = 48  # per example, [CLS] and [SEP]s included
    lr: float = 3e-3
    warmup: int = 20
    seed: int = 0
    kinds: tuple[str, ...] = ("movie",)  # the text it trains on (see TEXT_KINDS), one sentence per example
    min_count: int = 3  # rarer tokens share one output row with the never-seen ones
    embedding_std: float = 0.5  # initial token embeddings (the real BERT starts from 0.02)
    position_scale: float = 0.5  # position embeddings start as sinusoids of this amplitude
    mlm_probability: float = 0.3  # share of the tokens that are targets (BERT's 15%, doubled)


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


def _batches(lengths: Sequence[int], batch_size: int, seed: int, pool: int = 50) -> Iterator[list[int]]:
    """Endless epochs of shuffled batches of items of similar length (little padding).

    Each epoch shuffles the items, sorts every run of `pool` batches' worth by length, cuts
    it into batches and shuffles the batches. Python's RNG: the same order everywhere.
    """
    rng = random.Random(seed)
    order = list(range(len(lengths)))
    while True:
        rng.shuffle(order)
        batches = []
        for start in range(0, len(order), pool * batch_size):
            run = sorted(order[start:start + pool * batch_size], key=lambda i: lengths[i])
            batches += [run[i:i + batch_size] for i in range(0, len(run) - batch_size + 1, batch_size)]
        rng.shuffle(batches)
        yield from batches


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


@dataclass(frozen=True)
class _CompactVocabulary:
    """The ids that get an output row of their own during training; all others share row `shared`."""

    kept: torch.Tensor  # (K,) real ids, sorted
    index: torch.Tensor  # (vocab_size,) real id -> compact row (K for every id not kept)
    vocab_size: int

    @property
    def shared(self) -> int:
        return len(self.kept)

    @property
    def rows(self) -> int:
        return len(self.kept) + 1

    def offset(self) -> torch.Tensor:
        """Added to the compact logits: the shared row stands for this many real ids (log of it)."""
        offset = torch.zeros(self.rows)
        offset[-1] = math.log(self.vocab_size - len(self.kept))
        return offset

    def encode(self, rows: Sequence[Sequence[int]]) -> list[list[int]]:
        return [self.index[torch.tensor(row, dtype=torch.long)].tolist() for row in rows]


def _compact_vocabulary(rows: Sequence[Sequence[int]], vocab_size: int, min_count: int,
                        always: Sequence[int] = ()) -> _CompactVocabulary:
    counts = Counter(token for row in rows for token in row)
    kept = torch.tensor(sorted({t for t, n in counts.items() if n >= min_count} | set(always)))
    index = torch.full((vocab_size,), len(kept), dtype=torch.long)
    index[kept] = torch.arange(len(kept))
    return _CompactVocabulary(kept, index, vocab_size)


def _expand_rows(weight: torch.Tensor, vocabulary: _CompactVocabulary) -> torch.Tensor:
    """Compact rows (K + 1, ...) -> one row per real id; the ids not kept all get the shared row."""
    return weight[vocabulary.index].clone()


class _Bigrams:
    """The text's bigram statistics: for each token, the distribution of the token after it."""

    def __init__(self, rows: Sequence[Sequence[int]], size: int):
        counts = Counter((a, b) for row in rows for a, b in zip(row, row[1:]))
        pairs = torch.tensor(sorted(counts), dtype=torch.long)  # sorted by first token, then second
        n = torch.tensor([counts[a, b] for a, b in pairs.tolist()], dtype=torch.float)
        totals = torch.zeros(size).index_add_(0, pairs[:, 0], n)
        self.size = size
        self.next = pairs[:, 1]
        self.prob = n / totals[pairs[:, 0]]
        self.start = torch.zeros(size + 1, dtype=torch.long)
        self.start[1:] = torch.cumsum(torch.bincount(pairs[:, 0], minlength=size), 0)

    def targets(self, previous: torch.Tensor) -> torch.Tensor:
        """(n, size): row i is the distribution of the token that follows previous[i] in the text."""
        first, count = self.start[previous], self.start[previous + 1] - self.start[previous]
        row = torch.repeat_interleave(torch.arange(len(previous)), count)
        entry = torch.repeat_interleave(first - torch.cumsum(count, 0) + count, count) + torch.arange(int(count.sum()))
        dense = torch.zeros(len(previous), self.size)
        dense[row, self.next[entry]] = self.prob[entry]
        return dense


# ----------------------------------------------------------------------------- GPT-2


def train_gpt2(model, tokenizer, sentences: Sequence[str], recipe: GPT2Recipe = GPT2_RECIPE,
               progress: bool = True) -> dict:
    """Pretrain a GPT2LMHeadModel on `sentences` (next-token prediction, one sentence per row); return a log.

    Training runs on a compact copy of `model` (same configuration, one output row per token
    seen at least `recipe.min_count` times plus one shared row, no dropout); its weights are
    then written into `model`, whose ids outside the compact vocabulary all get the shared
    row. The loss is the cross-entropy with targets that blend the real next token
    (1 - bigram_weight) with the distribution of the tokens that follow the current one in
    the training text (bigram_weight). The log's `losses` are the plain next-token loss.
    """
    from transformers import GPT2LMHeadModel

    eos = tokenizer.eos_token_id
    real_rows = [ids[:recipe.max_tokens - 1] + [eos] for ids in tokenizer(list(sentences))["input_ids"]]
    vocabulary = _compact_vocabulary(real_rows, model.config.vocab_size, recipe.min_count, always=[eos])
    rows = vocabulary.encode(real_rows)
    bigrams = _Bigrams(rows, vocabulary.rows) if recipe.bigram_weight else None
    offset = vocabulary.offset()

    config = copy.deepcopy(model.config)
    config.vocab_size = vocabulary.rows
    config.bos_token_id = config.eos_token_id = None  # not in the compact vocabulary; unused in training
    config.resid_pdrop = config.embd_pdrop = config.attn_pdrop = 0.0  # less than two epochs: nothing to regularise
    torch.manual_seed(recipe.seed)
    compact = GPT2LMHeadModel(config)
    with torch.no_grad():
        compact.transformer.wte.weight.normal_(0.0, recipe.embedding_std)

    optimizer, scheduler = _optimizer(list(compact.parameters()), recipe.lr, recipe.warmup, recipe.steps)
    batches = _batches([len(row) for row in rows], recipe.batch_size, recipe.seed)
    losses, tokens = [], 0
    compact.train()
    with _progress(recipe.steps, "pretraining the GPT-2 stand-in", progress) as bar:
        for _ in range(recipe.steps):
            ids, mask = _pad([rows[i] for i in next(batches)], vocabulary.shared)
            hidden = compact.transformer(input_ids=ids, attention_mask=mask).last_hidden_state
            keep = mask[:, 1:].bool()  # predict every real next token, never padding
            log_probs = (compact.lm_head(hidden[:, :-1][keep]) + offset).log_softmax(dim=-1)
            next_token_loss = F.nll_loss(log_probs, ids[:, 1:][keep])
            loss = next_token_loss
            if bigrams is not None:
                bigram_loss = -(bigrams.targets(ids[:, :-1][keep]) * log_probs).sum(dim=-1).mean()
                loss = (1 - recipe.bigram_weight) * next_token_loss + recipe.bigram_weight * bigram_loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(compact.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            losses.append(round(next_token_loss.item(), 4))
            tokens += int(keep.sum())
            bar.update()
            bar.set_postfix(loss=f"{next_token_loss.item():.2f}", refresh=False)
    state = compact.state_dict()
    state["transformer.wte.weight"] = _expand_rows(state["transformer.wte.weight"], vocabulary)
    state["lm_head.weight"] = state["transformer.wte.weight"]
    model.load_state_dict(state)
    model.eval()
    return {"steps": recipe.steps, "sentences": len(rows), "tokens_seen": tokens,
            "distinct_tokens": len({t for row in real_rows for t in row}), "output_rows": vocabulary.rows,
            "first_loss": losses[0], "last_loss": losses[-1], "losses": losses, "recipe": asdict(recipe)}


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


def _bert_examples(tokenizer, recipe: BertRecipe) -> list[list[int]]:
    """The token ids of every training sentence of `recipe.kinds`, [CLS] and [SEP] included."""
    return tokenizer(training_sentences(recipe.kinds), truncation=True, max_length=recipe.max_tokens)["input_ids"]


def _sinusoids(positions: int, width: int, scale: float) -> torch.Tensor:
    """The sinusoidal position encoding of notebook 02 (sin on even, cos on odd dimensions), times `scale`."""
    position = torch.arange(positions, dtype=torch.float)[:, None]
    frequency = torch.exp(torch.arange(0, width, 2, dtype=torch.float) * (-math.log(10000.0) / width))
    table = torch.zeros(positions, width)
    table[:, 0::2] = torch.sin(position * frequency)
    table[:, 1::2] = torch.cos(position * frequency)
    return scale * table


_BERT_VOCAB_ROWS = ("bert.embeddings.word_embeddings.weight", "cls.predictions.decoder.weight",
                    "cls.predictions.bias", "cls.predictions.decoder.bias")


def train_bert(model, tokenizer, recipe: BertRecipe = BERT_RECIPE, progress: bool = True) -> dict:
    """Pretrain a BertForPreTraining with masked-word prediction (80-10-10) on single sentences; return a log.

    As in `train_gpt2`, training runs on a compact copy of `model` (one output row per token
    seen at least `recipe.min_count` times plus one shared row, no dropout) whose weights are
    then written into `model`. The NSP head is not trained (see BertRecipe).
    """
    from transformers import BertForPreTraining

    from .mlm import mask_tokens

    real = _bert_examples(tokenizer, recipe)
    special = sorted(set(tokenizer.all_special_ids))
    vocabulary = _compact_vocabulary(real, model.config.vocab_size, recipe.min_count, always=special)
    examples = vocabulary.encode(real)
    special_rows = vocabulary.index[torch.tensor(special)]
    mask_row, pad_row = int(vocabulary.index[tokenizer.mask_token_id]), int(vocabulary.index[tokenizer.pad_token_id])
    offset = vocabulary.offset()

    config = copy.deepcopy(model.config)
    config.vocab_size, config.pad_token_id = vocabulary.rows, pad_row
    config.hidden_dropout_prob = config.attention_probs_dropout_prob = 0.0  # a few epochs: nothing to regularise
    torch.manual_seed(recipe.seed)
    compact = BertForPreTraining(config)
    with torch.no_grad():
        words = compact.bert.embeddings.word_embeddings.weight
        words.normal_(0.0, recipe.embedding_std)
        words[pad_row] = 0.0
        positions = compact.bert.embeddings.position_embeddings.weight
        positions.copy_(_sinusoids(positions.shape[0], positions.shape[1], recipe.position_scale))

    optimizer, scheduler = _optimizer(list(compact.parameters()), recipe.lr, recipe.warmup, recipe.steps)
    batches = _batches([len(ids) for ids in examples], recipe.batch_size, recipe.seed)
    generator = torch.Generator().manual_seed(recipe.seed)
    losses = []
    compact.train()
    with _progress(recipe.steps, "pretraining the BERT stand-in", progress) as bar:
        for _ in range(recipe.steps):
            ids, mask = _pad([examples[i] for i in next(batches)], pad_row)
            corrupted, labels = mask_tokens(ids, torch.isin(ids, special_rows), mask_row, vocabulary.rows,
                                            mlm_probability=recipe.mlm_probability, generator=generator)
            hidden = compact.bert(input_ids=corrupted, attention_mask=mask).last_hidden_state
            selected = labels != -100  # score only the selected positions: same loss, far fewer logits
            loss = F.cross_entropy(compact.cls.predictions(hidden[selected]) + offset, labels[selected])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(compact.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            losses.append(round(loss.item(), 4))
            bar.update()
            bar.set_postfix(mlm=f"{loss.item():.2f}", refresh=False)
    state = compact.state_dict()
    for name in _BERT_VOCAB_ROWS:
        if name in state:
            state[name] = _expand_rows(state[name], vocabulary)
    model.load_state_dict(state)
    model.tie_weights()
    model.eval()
    return {"steps": recipe.steps, "sentences": len(examples), "output_rows": vocabulary.rows,
            "first_mlm_loss": losses[0], "last_mlm_loss": losses[-1], "losses": losses, "recipe": asdict(recipe)}


def one_mask_accuracy(model, tokenizer, sentences: Sequence[str], k: int = 5, seed: int = 0,
                      batch_size: int = 64) -> float:
    """Share of masked tokens whose true id is among the model's top-k, masking one random word piece per sentence.

    Each sentence gets exactly one [MASK], at a position drawn with `seed` among its
    non-special tokens; the model sees the rest of the sentence. `model` is a
    BertForMaskedLM or BertForPreTraining; only the masked positions are scored.
    This is the stand-in's quality check (tests/test_pretrain.py, `make benchmark`); notebook
    04's own `masked_word_accuracy` measures something else: BERT's 15% masking, all [MASK],
    top-1, top-5 and loss.
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
