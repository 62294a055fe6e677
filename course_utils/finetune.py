"""Fine-tune DistilBERT on movie reviews from the command line, on one device or many.

The same training as notebook 05 (manual PyTorch loop: fused AdamW with weight decay on the weight
matrices only, linear warm-up and decay, gradient clipping, mixed precision on CUDA), with the
same data (`course_utils.data.load_imdb()`: IMDb online, the review sentences offline) and the
same quick rule (`quick_mode`, sizes from `preset`), as a script for bigger machines:

    python -m course_utils.finetune --quick                      # one device
    torchrun --nproc_per_node 4 -m course_utils.finetune --full  # 4 GPUs, PyTorch DDP
    accelerate launch --num_processes 4 -m course_utils.finetune --full   # works too

Several machines: run the same line on every node, with the same rendezvous id and the
first node's address as the endpoint; the c10d rendezvous then numbers the processes so
that exactly one of them is rank 0 (without `--rdzv-backend c10d --rdzv-id`, torchrun's
default static rendezvous makes every node believe it holds ranks 0..7):

    torchrun --nnodes 2 --nproc_per_node 8 --rdzv-backend c10d --rdzv-id imdb-1 \
        --rdzv-endpoint NODE0:29500 -m course_utils.finetune --full

Every node needs the course's cache (COURSE_CACHE_DIR) and `--output-dir` on a shared
filesystem, or the data and checkpoint fetched beforehand on each node
(`python -m course_utils.prepare`, or one quick run). Rank 0 alone decides which checkpoint
(hub model or offline stand-in) and which data (IMDb or the review sentences) are used and
broadcasts both, with the exact training/validation/test reviews, so the ranks can never
disagree even when a node's network or cache differs.

Nothing else changes between these: when the launcher sets WORLD_SIZE > 1, the script joins
the process group (NCCL on CUDA, gloo on CPU), shards the training data with a
DistributedSampler and wraps the model in DistributedDataParallel. Only rank 0 prints
progress and saves the model; every rank prints one "[rank r/w] finished" line.
Quick mode (COURSE_QUICK=1, or the default on any device but CUDA when COURSE_QUICK is unset)
trains on a small subset with short sequences; --full asks for the book's setup (35k/5k/10k
reviews, up to 512 tokens).
"""

from __future__ import annotations

import argparse
import math
import os
import time
from pathlib import Path

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Subset

from .environment import cache_dir, env_flag, get_device, mixed_precision, quiet_hf_logs, seed_everything

BOOK_SPLIT = (35_000, 5_000, 10_000)  # train / validation / test, as in the book
WEIGHT_DECAY = 0.01  # AdamW's decay on the weight matrices (biases and LayerNorm: none), loop and Trainer alike
# Sizes per data source, chosen from measurements (notebook 05 explains them). Quick mode makes
# few optimizer steps, so on the review sentences it takes bigger ones than the book's 5e-5.
PRESETS = {
    # 50,000 IMDb reviews (median ~230 tokens): the book's setup
    ("full", "imdb"): {"train_size": 35_000, "valid_size": 5_000, "test_size": 10_000, "max_length": 512,
                       "batch_size": 16, "learning_rate": 5e-5, "epochs": 3},
    # real DistilBERT on real IMDb, 2-core CPU: 30 steps at 128 tokens. Measured: a step of 16 reviews takes
    # 9.8 s of CPU with one thread (21.6 s at 256 tokens, too slow). Rehearsed with a full-size replica
    # (tests/online): notebook 05's two trainings (the loop and the Trainer, 30 steps each) took 311 s and
    # 377 s of CPU with one thread, and the whole notebook 617 s with both cores of an idle 2-core machine
    ("quick", "imdb"): {"train_size": 240, "valid_size": 120, "test_size": 400, "max_length": 128,
                        "batch_size": 16, "learning_rate": 5e-5, "epochs": 2},
    # ~10,000 review sentences (median 26 tokens, longest 79): all of them
    ("full", "review-sentences"): {"train_size": 7_000, "valid_size": 1_000, "test_size": 2_000, "max_length": 128,
                                   "batch_size": 32, "learning_rate": 5e-5, "epochs": 3},
    # the stand-in encoder (MiniLM) on a 2-core CPU: 40 bucketed steps, about a minute of one core (measured);
    # fewer training sentences learn less and less reliably (480: 77% mean of 3 seeds, one at 74%); 500 test
    # sentences keep the accuracy's standard error near 1.8 points (notebook 05 runs them through three models:
    # 800 test and 200 validation sentences cost it about 13 s more)
    ("quick", "review-sentences"): {"train_size": 640, "valid_size": 100, "test_size": 500, "max_length": 64,
                                    "batch_size": 32, "learning_rate": 2e-4, "epochs": 2},
}
PRESETS[("full", "generated")] = PRESETS[("full", "review-sentences")]  # templated reviews: unit tests only
PRESETS[("quick", "generated")] = PRESETS[("quick", "review-sentences")]


def quick_mode(device: torch.device) -> bool:
    """COURSE_QUICK decides (1/0, true/false, yes/no); unset, quick mode everywhere but on CUDA.

    A CPU needs hours for the full setup, and Apple MPS GPUs too (and memory for 512-token
    batches), so only CUDA defaults to the book's full setup.
    """
    return env_flag("COURSE_QUICK", device.type != "cuda")


def preset(quick: bool, source: str) -> dict:
    """The sizes, sequence length, batch size, learning rate and epochs for a mode and data source."""
    key = ("quick" if quick else "full", source)
    if key not in PRESETS:
        raise ValueError(f"no preset for data source {source!r}; expected one of 'imdb', 'review-sentences', 'generated'.")
    return dict(PRESETS[key])


def parameter_groups(model: torch.nn.Module, weight_decay: float = WEIGHT_DECAY) -> list[dict]:
    """AdamW parameter groups: weight decay on weights, none on biases and LayerNorm parameters.

    The same rule as the Trainer's `get_decay_parameter_names`: pulling a bias or a LayerNorm
    gain towards 0 does not regularise anything, it only distorts the pre-trained model.
    """
    no_decay = set()
    for module_name, module in model.named_modules():
        for name, _ in module.named_parameters(recurse=False):
            if isinstance(module, torch.nn.LayerNorm) or name == "bias":
                no_decay.add(f"{module_name}.{name}" if module_name else name)
    named = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    return [
        {"params": [p for name, p in named if name not in no_decay], "weight_decay": weight_decay},
        {"params": [p for name, p in named if name in no_decay], "weight_decay": 0.0},
    ]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options; unset sizes come from the quick or full preset of the data source."""
    parser = argparse.ArgumentParser(
        prog="python -m course_utils.finetune",
        description="Fine-tune DistilBERT for movie-review sentiment classification (single device or DDP).",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="small subset, short sequences (default unless CUDA, or COURSE_QUICK=1)")
    mode.add_argument("--full", action="store_true", help="the book's setup: 35k/5k/10k reviews, up to 512 tokens")
    parser.add_argument("--checkpoint", default="distilbert-base-uncased", help="hub name or local folder (offline: a stand-in)")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--batch-size", type=int, help="per process")
    parser.add_argument("--lr", type=float, help="peak learning rate (full mode: the book's 5e-5)")
    parser.add_argument("--weight-decay", type=float, default=WEIGHT_DECAY, help="AdamW decay on weight matrices")
    parser.add_argument("--warmup-ratio", type=float, default=0.1, help="share of the steps with a rising learning rate")
    parser.add_argument("--max-grad-norm", type=float, default=1.0)
    parser.add_argument("--max-length", type=int, help="tokens per review after truncation")
    parser.add_argument("--train-size", type=int)
    parser.add_argument("--valid-size", type=int)
    parser.add_argument("--test-size", type=int)
    parser.add_argument("--max-steps", type=int, help="stop after this many optimizer steps (smoke tests)")
    parser.add_argument("--generated", type=int, metavar="N", help="use N generated reviews instead of IMDb (tests)")
    parser.add_argument("--output-dir", type=Path, help="where rank 0 saves the model (default: <cache>/models/distilbert-imdb)")
    parser.add_argument("--no-amp", action="store_true", help="disable mixed precision on CUDA")
    parser.add_argument("--seed", type=int, default=123)
    return parser.parse_args(argv)


_OPTION_OF = {"learning_rate": "lr"}  # preset key -> argparse name where they differ


def resolve_settings(args: argparse.Namespace, device: torch.device, source: str = "imdb") -> argparse.Namespace:
    """Fill unset options from the preset of the mode (--quick/--full, else quick_mode) and the data source."""
    quick = args.quick or (not args.full and quick_mode(device))
    for key, value in preset(quick, source).items():
        option = _OPTION_OF.get(key, key)
        if getattr(args, option) is None:
            setattr(args, option, value)
    args.mode = "quick" if quick else "full"
    args.source = source
    args.output_dir = args.output_dir or cache_dir() / "models" / "distilbert-imdb"
    return args


def init_distributed() -> tuple[int, int, torch.device]:
    """Join the process group when launched with WORLD_SIZE > 1; return (rank, world_size, device)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    device = get_device()
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if world_size > 1:
        if device.type == "mps":
            raise RuntimeError("PyTorch DDP does not support Apple MPS; set COURSE_DEVICE=cpu to use gloo on the CPU.")
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return rank, world_size, device


def from_rank0(value, world_size: int):
    """Rank 0's `value` on every rank (any picklable object): one decision for all processes."""
    if world_size == 1:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


class ReviewDataset(Dataset):
    """Tokenised reviews (lists of ids, unpadded) and their labels."""

    def __init__(self, encodings: dict, labels) -> None:
        self.encodings, self.labels = encodings, [int(label) for label in labels]

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict:
        item = {key: values[index] for key, values in self.encodings.items()}
        item["labels"] = self.labels[index]
        return item


def split_table(df, sizes: list[int]) -> list[tuple[list[str], list[int]]]:
    """The book's consecutive train/validation/test slices, scaled down in proportion if the table is smaller."""
    if sum(sizes) > len(df):  # e.g. full mode on the generated reviews: keep the proportions
        scale = len(df) / sum(sizes)
        sizes = [max(1, int(size * scale)) for size in sizes]
    bounds = [0, sizes[0], sizes[0] + sizes[1], sum(sizes)]
    return [(df["review"].iloc[a:b].tolist(), df["sentiment"].iloc[a:b].astype(int).tolist())
            for a, b in zip(bounds, bounds[1:])]


def load_source(args: argparse.Namespace, progress: bool):
    """The review table: IMDb online, the review sentences offline, or N generated reviews (--generated)."""
    from . import data

    if args.generated:
        df = data.generate_reviews(args.generated, seed=args.seed)
        df.attrs["source"] = "generated"
        return df
    return data.load_imdb(progress=progress)


def checkpoint_on_this_node(source: str, rank: int) -> str:
    """Check that rank 0's checkpoint exists here too (a local folder must be on a shared filesystem)."""
    looks_local = os.path.isabs(source) or source.startswith(".")
    if looks_local and not Path(source).is_dir():
        raise FileNotFoundError(
            f"[rank {rank}] rank 0 chose the local checkpoint folder {source}, which this machine does not have. "
            "Put the course's cache on a shared filesystem (COURSE_CACHE_DIR), or run "
            "`python -m course_utils.prepare` on every node before launching."
        )
    return source


@torch.no_grad()
def evaluate(model, loader: DataLoader, device: torch.device, dtype: torch.dtype | None, world_size: int) -> float:
    """Accuracy over a (possibly sharded) loader, summed over all ranks."""
    model.eval()
    counts = torch.zeros(2, device=device)
    for batch in loader:
        batch = {key: value.to(device) for key, value in batch.items()}
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        counts[0] += (logits.argmax(dim=-1) == batch["labels"]).sum()
        counts[1] += len(batch["labels"])
    if world_size > 1:
        dist.all_reduce(counts)
    model.train()
    return (counts[0] / counts[1].clamp(min=1)).item()


def main(argv: list[str] | None = None) -> int:
    """Run the fine-tuning; return the process exit code."""
    from transformers import (AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding,
                              get_linear_schedule_with_warmup)
    from tqdm.auto import tqdm

    from .checkpoints import checkpoint

    args = parse_args(argv)
    rank, world_size, device = init_distributed()
    is_main = rank == 0
    say = print if is_main else (lambda *a, **k: None)
    quiet_hf_logs()
    seed_everything(args.seed)

    # Rank 0 alone looks at the network and the caches: it picks the data and the checkpoint,
    # and every other rank receives exactly its choice (and its reviews) instead of deciding again.
    splits = source = None
    if is_main:
        df = load_source(args, progress=True)
        data_source = df.attrs.get("source", "imdb")
        args = resolve_settings(args, device, data_source)
        splits = split_table(df, [args.train_size, args.valid_size, args.test_size])
        source = checkpoint(args.checkpoint)  # the offline notice, printed once
    data_source, splits, source = from_rank0((args.source if is_main else None, splits, source), world_size)
    if not is_main:
        args = resolve_settings(args, device, data_source)
        source = checkpoint_on_this_node(source, rank)
    say(f"mode: {args.mode}, data: {data_source}, device: {device.type}, processes: {world_size}, "
        f"train/valid/test: {'/'.join(str(len(labels)) for _, labels in splits)}, max_length: {args.max_length}")

    # rank 0 downloads (hub model) or builds first; then the others read the same files
    if world_size > 1 and not is_main:
        dist.barrier()
    tokenizer = AutoTokenizer.from_pretrained(source)
    torch.manual_seed(args.seed)  # the same new classification head on every rank
    model = AutoModelForSequenceClassification.from_pretrained(source, num_labels=2).to(device)
    if world_size > 1 and is_main:
        dist.barrier()

    train_set, valid_set, test_set = (
        ReviewDataset(tokenizer(texts, truncation=True, max_length=args.max_length), labels) for texts, labels in splits)
    collate = DataCollatorWithPadding(tokenizer)  # pads each batch to its own longest review
    sampler = DistributedSampler(train_set, num_replicas=world_size, rank=rank, shuffle=True, seed=args.seed) if world_size > 1 else None
    generator = torch.Generator().manual_seed(args.seed)
    train_loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=sampler is None, sampler=sampler,
                              collate_fn=collate, generator=generator)

    def shard(ds):  # each rank evaluates every world_size-th review, no duplicates
        return DataLoader(Subset(ds, range(rank, len(ds), world_size)), batch_size=2 * args.batch_size, collate_fn=collate)

    valid_loader, test_loader = shard(valid_set), shard(test_set)

    unwrapped = model  # evaluation and saving use the plain module: no DDP collectives there
    # fused: one kernel updates all parameters (the Trainer's default optimizer, "adamw_torch_fused")
    optimizer = torch.optim.AdamW(parameter_groups(unwrapped, args.weight_decay), lr=args.lr, fused=True)
    if world_size > 1:
        model = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    dtype = None if args.no_amp else mixed_precision(device)
    scaler = torch.amp.GradScaler("cuda", enabled=dtype == torch.float16)  # only float16 needs loss scaling
    steps_per_epoch = len(train_loader)
    total_steps = steps_per_epoch * args.epochs
    if args.max_steps:
        total_steps = min(total_steps, args.max_steps)
    scheduler = get_linear_schedule_with_warmup(optimizer, math.ceil(args.warmup_ratio * total_steps), total_steps)

    step, start = 0, time.perf_counter()
    model.train()
    for epoch in range(args.epochs):
        if sampler is not None:
            sampler.set_epoch(epoch)  # a different shuffle each epoch, the same on every rank
        bar = tqdm(train_loader, desc=f"epoch {epoch + 1}/{args.epochs}", disable=not is_main, leave=False)
        for batch in bar:
            batch = {key: value.to(device) for key, value in batch.items()}
            with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                loss = model(**batch).loss
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()  # DDP averages the gradients across ranks here
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), args.max_grad_norm)
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            step += 1
            bar.set_postfix(loss=f"{loss.item():.4f}")
            if step >= total_steps:
                break
        accuracy = evaluate(unwrapped, valid_loader, device, dtype, world_size)
        say(f"epoch {epoch + 1}/{args.epochs}: train loss {loss.item():.4f}, validation accuracy {accuracy:.2%}")
        if step >= total_steps:
            break
    elapsed = time.perf_counter() - start
    test_accuracy = evaluate(unwrapped, test_loader, device, dtype, world_size)
    say(f"test accuracy: {test_accuracy:.2%} ({step} steps in {elapsed:.1f} s, {step / elapsed:.2f} steps/s per process)")

    if is_main:
        args.output_dir.mkdir(parents=True, exist_ok=True)
        unwrapped.save_pretrained(args.output_dir)
        tokenizer.save_pretrained(args.output_dir)
        print(f"saved the fine-tuned model and tokenizer to {args.output_dir}")
    if world_size > 1:
        dist.barrier()  # nobody leaves before the model is saved
    print(f"[rank {rank}/{world_size}] finished: {step} steps, test accuracy {test_accuracy:.4f}", flush=True)
    if world_size > 1:
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
