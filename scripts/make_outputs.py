"""Re-execute notebooks in place in the canonical offline environment (`make outputs`).

Outputs of cells tagged `nbval-ignore-output` (timings, device-dependent results) are
stripped afterwards, and so is the notebook's ipywidgets state (progress bars), so the
stored outputs are exactly what `pytest --nbval` compares
(tests/test_notebook_hygiene.py checks it).

    python scripts/make_outputs.py                 # every notebook
    python scripts/make_outputs.py notebooks/01_self_attention.ipynb
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests import canonical_env  # noqa: E402

IGNORE_TAG = "nbval-ignore-output"


def all_notebooks() -> list[Path]:
    return sorted((ROOT / "notebooks").glob("*.ipynb")) + sorted((ROOT / "notebooks" / "solutions").glob("*.ipynb"))


def strip_ignored_outputs(nb: nbformat.NotebookNode) -> int:
    # ipywidgets state (tqdm progress bars: values, losses, timings of this one run) is never committed
    nb.metadata.pop("widgets", None)
    stripped = 0
    for cell in nb.cells:
        cell.metadata.pop("execution", None)  # timestamps of an older run, if any
        if cell.cell_type == "code" and IGNORE_TAG in cell.metadata.get("tags", []):
            cell.outputs = []
            cell.execution_count = None
            stripped += 1
    return stripped


def execute(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=900,
        kernel_name="python3",
        coalesce_streams=True,  # one stream output per cell and name, however the kernel flushed
        record_timing=False,  # no timestamps in the committed JSON: re-running changes only outputs
        resources={"metadata": {"path": str(path.parent)}},
    )
    start = time.perf_counter()
    client.execute()
    stripped = strip_ignored_outputs(nb)
    nbformat.write(nb, path)
    print(f"{path.relative_to(ROOT)}: {time.perf_counter() - start:.1f} s, {stripped} cells stripped")


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(
        description="Re-execute notebooks in place in the canonical offline environment and store their "
                    "outputs (cells tagged nbval-ignore-output are stripped).")
    parser.add_argument("notebooks", nargs="*", type=Path,
                        help="notebook files (default: every notebook in notebooks/ and notebooks/solutions/)")
    args = parser.parse_args(argv)
    missing = [str(path) for path in args.notebooks if not path.is_file()]
    if missing:
        parser.error(f"no such notebook: {', '.join(missing)}")
    canonical_env.apply()
    paths = [path.resolve() for path in args.notebooks] or all_notebooks()
    for path in paths:
        execute(path)


if __name__ == "__main__":
    main(sys.argv[1:])
