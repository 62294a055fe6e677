"""Fine-tune DistilBERT on the IMDb reviews from the command line, on one device or many.

The same training as notebook 05 (manual PyTorch loop: AdamW, linear warm-up and
decay, gradient clipping, mixed precision on CUDA), as a script for bigger machines:

    python -m course_utils.finetune --quick                      # one device
    torchrun --nproc_per_node 4 -m course_utils.finetune         # 4 GPUs, PyTorch DDP
    torchrun --nnodes 2 --nproc_per_node 8 --rdzv-endpoint HOST:29500 -m course_utils.finetune
    accelerate launch -m course_utils.finetune                   # works too

Nothing changes between these: when the launcher sets WORLD_SIZE > 1, the script joins
the process group (NCCL on CUDA, gloo on CPU), shards the training data with a
DistributedSampler and wraps the model in DistributedDataParallel. Only rank 0 prints
progress and saves the model; every rank prints one "[rank r/w] finished" line.
Quick mode (COURSE_QUICK=1, or the default on a CPU when COURSE_QUICK is unset) trains on a small subset with
short sequences; --full asks for the book's setup (35k/5k/10k reviews, up to 512 tokens).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import os
import time
from pathlib import Path

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Subset

from .environment import cache_dir, get_device, quiet_hf_logs, seed_everything

BOOK_SPLIT = (35_000, 5_000, 10_000)  # train / validation / test, as in the book
# quick mode makes few optimizer steps, so it takes bigger ones than the book's 5e-5
QUICK = {"train_size": 192, "valid_size": 64, "test_size": 192, "max_length": 48, "lr": 1e-4}  # as notebook 05
FULL = {"train_size": BOOK_SPLIT[0], "valid_size": BOOK_SPLIT[1], "test_size": BOOK_SPLIT[2], "max_length": 512, "lr": 5e-5}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options; unset sizes come from the quick or full preset."""
    parser = argparse.ArgumentParser(
        prog="python -m course_utils.finetune",
        description="Fine-tune DistilBERT for IMDb sentiment classification (single device or DDP).",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="small subset, short sequences (default on CPU or with COURSE_QUICK=1)")
    mode.add_argument("--full", action="store_true", help="the book's setup: 35k/5k/10k reviews, up to 512 tokens")
    parser.add_argument("--checkpoint", default="distilbert-base-uncased", help="hub name or local folder (offline: a stand-in)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=16, help="per process")
    parser.add_argument("--lr", type=float, help="peak learning rate (quick: 1e-4, full: the book's 5e-5)")
    parser.add_argument("--warmup-ratio", type=float, default=0.1, help="share of the steps with a rising learning rate")
    parser.add_argument("--max-grad-norm", type=float, default=1.0)
    parser.add_argument("--max-length", type=int, help="tokens per review after truncation")
    parser.add_argument("--train-size", type=int)
    parser.add_argument("--valid-size", type=int)
    parser.add_argument("--test-size", type=int)
    parser.add_argument("--max-steps", type=int, help="stop after this many optimizer steps (smoke tests)")
    parser.add_argument("--generated", type=int, metavar="N", help="use N generated reviews instead of IMDb")
    parser.add_argument("--output-dir", type=Path, help="where rank 0 saves the model (default: <cache>/models/distilbert-imdb)")
    parser.add_argument("--no-amp", action="store_true", help="disable mixed precision on CUDA")
    parser.add_argument("--seed", type=int, default=123)
    return parser.parse_args(argv)


def resolve_settings(args: argparse.Namespace, device: torch.device) -> argparse.Namespace:
    """Fill unset sizes from the quick preset (CPU, COURSE_QUICK=1, --quick) or the full one."""
    # the notebook's rule: COURSE_QUICK decides, and without it quick mode is the CPU default
    default = "1" if device.type == "cpu" else "0"
    quick = args.quick or (not args.full and os.environ.get("COURSE_QUICK", default) == "1")
    preset = QUICK if quick else FULL
    for key, value in preset.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.mode = "quick" if quick else "full"
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


def load_splits(args: argparse.Namespace, rank: int, world_size: int):
    """The train/validation/test tables: the book's slices, scaled down if the data is smaller."""
    from . import data

    def load():
        if args.generated:
            return data.generate_reviews(args.generated, seed=args.seed)
        return data.load_imdb(progress=rank == 0)

    if world_size > 1 and rank != 0:
        dist.barrier()  # rank 0 downloads and caches first; the others then read its cache
        with contextlib.redirect_stdout(io.StringIO()):
            df = load()
    else:
        df = load()
        if world_size > 1:
            dist.barrier()
    sizes = [args.train_size, args.valid_size, args.test_size]
    if sum(sizes) > len(df):  # e.g. full mode on the generated reviews: keep the proportions
        scale = len(df) / sum(sizes)
        sizes = [max(1, int(size * scale)) for size in sizes]
    train_end, valid_end = sizes[0], sizes[0] + sizes[1]
    return df.iloc[:train_end], df.iloc[train_end:valid_end], df.iloc[valid_end:valid_end + sizes[2]]


def autocast_dtype(device: torch.device, enabled: bool = True) -> torch.dtype | None:
    """bf16 where the GPU supports it, else fp16 on CUDA; None (full precision) elsewhere."""
    if not enabled or device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


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
    args = resolve_settings(args, device)
    is_main = rank == 0
    say = print if is_main else (lambda *a, **k: None)
    quiet_hf_logs()
    seed_everything(args.seed)
    say(f"mode: {args.mode}, device: {device.type}, processes: {world_size}, "
        f"train/valid/test <= {args.train_size}/{args.valid_size}/{args.test_size}, max_length: {args.max_length}")

    train_df, valid_df, test_df = load_splits(args, rank, world_size)
    with contextlib.redirect_stdout(io.StringIO()) if not is_main else contextlib.nullcontext():
        source = checkpoint(args.checkpoint)  # the offline notice, printed once by rank 0
    tokenizer = AutoTokenizer.from_pretrained(source)

    def dataset(df) -> ReviewDataset:
        return ReviewDataset(tokenizer(list(df["review"]), truncation=True, max_length=args.max_length), df["sentiment"])

    train_set, valid_set, test_set = dataset(train_df), dataset(valid_df), dataset(test_df)
    collate = DataCollatorWithPadding(tokenizer)  # pads each batch to its own longest review
    sampler = DistributedSampler(train_set, num_replicas=world_size, rank=rank, shuffle=True, seed=args.seed) if world_size > 1 else None
    generator = torch.Generator().manual_seed(args.seed)
    train_loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=sampler is None, sampler=sampler,
                              collate_fn=collate, generator=generator)

    def shard(ds):  # each rank evaluates every world_size-th review, no duplicates
        return DataLoader(Subset(ds, range(rank, len(ds), world_size)), batch_size=2 * args.batch_size, collate_fn=collate)

    valid_loader, test_loader = shard(valid_set), shard(test_set)

    torch.manual_seed(args.seed)  # the same new classification head on every rank
    model = AutoModelForSequenceClassification.from_pretrained(source, num_labels=2).to(device)
    unwrapped = model  # evaluation and saving use the plain module: no DDP collectives there
    if world_size > 1:
        model = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    dtype = autocast_dtype(device, enabled=not args.no_amp)
    scaler = torch.amp.GradScaler("cuda", enabled=dtype == torch.float16)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr)
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
