"""Speed figures for the course (`make benchmark`). Prints numbers; asserts nothing about time.

- attention: explicit loops vs matrix products vs torch's fused kernel;
- checkpoint(): building each stand-in (wall and CPU time; GPT-2 and BERT are pretrained),
  resolving a cached one, the quality of the pretrained ones on held-out sentences
  (perplexity, top-5 masked-word accuracy), and the bounded wait on a hub that never answers.
"""

from __future__ import annotations

import math
import os
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import course_utils  # noqa: E402
from course_utils import checkpoints, pretrain  # noqa: E402


def timed(fn, repeat: int = 5) -> float:
    fn()  # warm-up
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - start) / repeat


def attention_loops(q, k, v):
    T = q.shape[0]
    out = torch.zeros_like(v)
    for i in range(T):
        scores = torch.stack([q[i] @ k[j] for j in range(T)]) / math.sqrt(q.shape[-1])
        weights = torch.softmax(scores, dim=0)
        out[i] = (weights[:, None] * v).sum(0)
    return out


def bench_attention() -> None:
    print("attention, one sequence (T tokens, d = 64), mean of 5 runs:")
    for T in (32, 128):
        q, k, v = torch.randn(3, T, 64).unbind(0)
        loops = timed(lambda: attention_loops(q, k, v), repeat=2)
        ours = timed(lambda: course_utils.attention(q, k, v))
        fused = timed(lambda: F.scaled_dot_product_attention(q, k, v))
        print(f"  T={T:4d}  loops {loops * 1e3:8.1f} ms   matrices {ours * 1e3:6.3f} ms   "
              f"F.sdpa {fused * 1e3:6.3f} ms   loops/matrices x{loops / ours:,.0f}")


def standin_quality(name: str, folder: Path) -> str:
    """The measured quality of a pretrained stand-in on held-out movie-review sentences."""
    from transformers import AutoTokenizer, BertForPreTraining, GPT2LMHeadModel

    held = pretrain.heldout_sentences("movie")
    tokenizer = AutoTokenizer.from_pretrained(folder)
    if name == "gpt2":
        model = GPT2LMHeadModel.from_pretrained(folder)
        return f"held-out perplexity {pretrain.perplexity(model, tokenizer, held):,.0f} ({len(held)} sentences)"
    if name == "bert-base-uncased":
        model = BertForPreTraining.from_pretrained(folder)
        top5 = pretrain.one_mask_accuracy(model, tokenizer, held, k=5)
        return f"held-out top-5 masked-word accuracy {top5:.1%} ({len(held)} sentences)"
    return ""


def bench_checkpoints() -> None:
    print(f"checkpoint(): stand-in builds (pinned to {pretrain.BUILD_THREADS} thread(s)):")
    real_text = course_utils.data.vader_dir()  # the review sentences, already prepared
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copytree(real_text, Path(tmp) / "vader")
        os.environ["COURSE_CACHE_DIR"] = tmp
        os.environ["COURSE_OFFLINE"] = "1"
        for name in course_utils.STANDINS:
            start, cpu = time.perf_counter(), time.process_time()
            folder = checkpoints.standin_dir(name)
            built, cpu = time.perf_counter() - start, time.process_time() - cpu
            start = time.perf_counter()
            checkpoints.standin_dir(name)
            cached = time.perf_counter() - start
            print(f"  {name:26s} first build {built:6.1f} s (CPU {cpu:6.1f} s), cached {cached * 1e3:6.2f} ms"
                  f"  {standin_quality(name, folder)}", flush=True)
        del os.environ["COURSE_OFFLINE"]
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        os.environ["HF_ENDPOINT"] = f"http://127.0.0.1:{sock.getsockname()[1]}"
        start = time.perf_counter()
        answered = course_utils.hub_answers()
        print(f"  hub that never answers: gave up after {time.perf_counter() - start:.2f} s "
              f"(limit {checkpoints.HUB_TIMEOUT_S} s), answered={answered}")
        sock.close()


if __name__ == "__main__":
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    bench_attention()
    bench_checkpoints()
