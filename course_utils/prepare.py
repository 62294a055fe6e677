"""Fetch and cache, once, everything the course needs to run offline: `python -m course_utils.prepare`.

`make lab`, `make test` and `make setup` run it after installing. Each step is idempotent
and fast when its cache is complete, and prints one line. Add new steps to STEPS.
"""

from __future__ import annotations

import sys
from typing import Callable


def review_sentences() -> str:
    """The real-text set (VADER data, fetched with pip): the offline replacement of IMDb."""
    from . import data

    folder = data.prepare_vader(offline=False)  # setup is when the network is used, whatever the offline switches say
    df = data.load_review_sentences()
    return (f"review sentences: {len(df):,} of {df.attrs['rated']:,} Rotten Tomatoes sentences "
            f"(clearly rated) ready in {folder}")


def standins() -> str:
    """The offline stand-ins (GPT-2 and BERT are pretrained here, once, on the review sentences)."""
    import time

    from .checkpoints import STANDINS, standin_dir

    start = time.perf_counter()
    for name in STANDINS:
        standin_dir(name)
    return f"offline stand-ins ready ({', '.join(STANDINS)}) in {time.perf_counter() - start:.0f} s"


# (name, step): every step returns its one-line summary; stand-in builds go here too
STEPS: list[tuple[str, Callable[[], str]]] = [
    ("review sentences", review_sentences),
    ("stand-ins", standins),
]


def main(argv: list[str] | None = None) -> int:
    """Run every step; print one line each; return 1 (after trying all) if any failed."""
    from .data import CacheError

    failed = 0
    for name, step in STEPS:
        try:
            print(f"[course_utils.prepare] {step()}", flush=True)
        except CacheError as error:  # DataError, ManifestError: messages that say what to do
            failed += 1
            print(f"[course_utils.prepare] {name}: FAILED: {error}", file=sys.stderr, flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
