"""Run every notebook (and the solutions) on the ONLINE path: `make test-online-rehearsal`.

    python -m tests.online.rehearsal                      # local hub with full-size replicas
    python -m tests.online.rehearsal --real               # the real hub and IMDb server (needs internet)
    python -m tests.online.rehearsal notebooks/05_distilbert_imdb.ipynb   # some notebooks only

No offline variable is set, so `course_utils.checkpoint()` probes the hub and returns hub
names, `from_pretrained` downloads full-size checkpoints into a fresh Hugging Face cache,
and `load_imdb()` downloads and verifies the archive into a fresh course cache (holding
only what `make lab` prepares: the review-sentence tables): what a learner with internet
gets on a CPU in quick mode. The kernels otherwise inherit the caller's environment, thread
settings included: on a machine busy with other work, run it with OMP_NUM_THREADS=1, or torch
starts a thread per core in each kernel, the threads wait on each other, and CPU and wall times
inflate several times over. Outputs are not compared (replica weights are random); every
assert in the notebooks must hold. Two cells are added around
each notebook (not saved anywhere): the first records what `checkpoint()` and
`load_imdb()` return, the last asserts that every checkpoint was a hub name and every
table came from the IMDb archive, i.e. that the online branch was taken.

Weights of the replicas are random, so the few asserts that check what a checkpoint has
learned (NEEDS_LEARNED_WEIGHTS, each named by notebook, cell id and assert line) are
reported as "expected with random weights" in the rehearsal; with --real they must hold.

With the local hub (default), everything runs against 127.0.0.1: the hub serves the
replicas of tests/online/replicas.py and the archive of tests/online/imdb_replica.py, and
any other host is routed to a closed local port, so nothing can leave the machine. All
files go to one temporary folder that is removed at the end (--keep keeps it).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

OFFLINE_VARS = ("COURSE_OFFLINE", "HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")
CELL_TIMEOUT_S = 3600
MARK = "[online-rehearsal]"
ANSI = re.compile(r"\x1b\[[0-9;]*m")

# Asserts that check what a checkpoint has LEARNED cannot hold with the replicas' random weights.
# In the rehearsal (never with --real) such an assert failing, at exactly this line of this cell
# (notebook, cell id), is reported as expected instead of failing the run; all else must hold.
NEEDS_LEARNED_WEIGHTS = {
    ("notebooks/03_gpt2_generation_features.ipynb", "fb71171d"): 'assert perplexities["pretrained (lm)"] <',
    ("notebooks/03_gpt2_generation_features.ipynb", "2423d651"): "assert before[0][1] < 0.001 < after[0][1]",
    ("notebooks/04_bert_mlm.ipynb", "mlm-heldout-code"): 'assert trained["top-5"] >= 0.15',
    ("notebooks/04_bert_mlm.ipynb", "fill-mask-vs-untrained"): "assert top_guesses(bert_mlm, text)[1] > 100",
    ("notebooks/05_distilbert_imdb.ipynb", "26ae69ef"): "assert test_accuracy_manual >",  # both asserts of the cell
    ("notebooks/05_distilbert_imdb.ipynb", "5c58719d"): "assert test_accuracy_trainer > MIN_ACCURACY",
    ("notebooks/05_distilbert_imdb.ipynb", "d86ba154"): "assert probabilities[0, 1] > 0.5 and probabilities[1, 1] < 0.5",
}

RECORD_CELL = """\
# added by tests/online/rehearsal.py: record what checkpoint() and load_imdb() return
import functools as _rh_functools
import course_utils as _rh_cu, course_utils.checkpoints as _rh_ckpt, course_utils.data as _rh_data
_rh_calls = {"checkpoint": [], "load_imdb": []}
def _rh_recording(kind, function):
    @_rh_functools.wraps(function)
    def wrapper(*args, **kwargs):
        result = function(*args, **kwargs)
        _rh_calls[kind].append((args[0] if args else kwargs.get("name"), result) if kind == "checkpoint"
                               else result.attrs.get("source"))
        return result
    return wrapper
_rh_cu.checkpoint = _rh_ckpt.checkpoint = _rh_recording("checkpoint", _rh_ckpt.checkpoint)
_rh_data.load_imdb = _rh_recording("load_imdb", _rh_data.load_imdb)
"""

CHECK_CELL = """\
# added by tests/online/rehearsal.py: the online branch must have been taken
import json as _rh_json, resource as _rh_resource
_rh_offline = [(name, str(result)) for name, result in _rh_calls["checkpoint"] if result != name]
assert not _rh_offline, f"checkpoint() returned local folders instead of hub names: {_rh_offline}"
assert all(source == "imdb" for source in _rh_calls["load_imdb"]), f"load_imdb() sources: {_rh_calls['load_imdb']}"
_rh_usage = [_rh_resource.getrusage(who) for who in (_rh_resource.RUSAGE_SELF, _rh_resource.RUSAGE_CHILDREN)]
print("%s", _rh_json.dumps({"checkpoints": sorted({name for name, _ in _rh_calls["checkpoint"]}),
      "imdb": len(_rh_calls["load_imdb"]), "cpu_s": sum(u.ru_utime + u.ru_stime for u in _rh_usage)}))
""" % MARK


def all_notebooks() -> list[Path]:
    return sorted((ROOT / "notebooks").glob("*.ipynb")) + sorted((ROOT / "notebooks" / "solutions").glob("*.ipynb"))


def _environment(work: Path, hub_url: str | None, imdb: tuple[str, str] | None) -> dict[str, str]:
    """The kernels' environment: a learner's (no offline variable), with every cache in `work`."""
    env = {k: v for k, v in os.environ.items() if k not in OFFLINE_VARS}
    for name in ("HF_ENDPOINT", "HF_HUB_CACHE", "HF_HOME", "COURSE_IMDB_URL", "COURSE_IMDB_SHA256",
                 "COURSE_IMDB_DIR", "COURSE_CACHE_DIR", "HF_XET_CACHE", "TRANSFORMERS_CACHE"):
        env.pop(name, None)
    env.update(
        HF_HOME=str(work / "hf"),  # a fresh Hugging Face cache: every model is downloaded
        COURSE_CACHE_DIR=str(work / "course"),  # a fresh course cache: the IMDb archive too
        COURSE_DEVICE="cpu", COURSE_QUICK="1",
        MPLBACKEND="Agg", MPLCONFIGDIR=str(work / "matplotlib"), IPYTHONDIR=str(work / "ipython"),
        JUPYTER_RUNTIME_DIR=str(work / "jupyter-runtime"), XDG_CACHE_HOME=str(work / "xdg-cache"),
        TOKENIZERS_PARALLELISM="false", PYDEVD_DISABLE_FILE_VALIDATION="1",
    )
    if hub_url is not None:
        # only 127.0.0.1: any other host goes to a closed local port and fails at once
        dead = "http://127.0.0.1:9"
        env.update(HF_ENDPOINT=hub_url, HTTP_PROXY=dead, HTTPS_PROXY=dead, http_proxy=dead, https_proxy=dead,
                   NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost", HF_HUB_DISABLE_TELEMETRY="1")
    if imdb is not None:
        env.update(COURSE_IMDB_URL=imdb[0], COURSE_IMDB_SHA256=imdb[1])
    return env


def _first_line(source: str) -> str:
    lines = [line for line in source.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return (lines[0] if lines else source.strip())[:100]


def _needs_learned_weights(notebook: str, cell, output) -> bool:
    needle = NEEDS_LEARNED_WEIGHTS.get((notebook, cell.get("id")))
    traceback = ANSI.sub("", "\n".join(output.get("traceback", [])))
    return needle is not None and output.get("ename") == "AssertionError" and needle in traceback


def run_notebook(path: Path, work: Path, executed: Path | None = None, random_weights: bool = True,
                 slow_cells: float | None = None) -> dict:
    """Execute one notebook copy in `work`; return its time, CPU time, summary and errors."""
    import nbformat
    from nbclient import NotebookClient

    version = hashlib.sha256(path.read_bytes()).hexdigest()[:12]  # which edit of the notebook ran
    nb = nbformat.reads(path.read_text(encoding="utf-8"), as_version=4)
    original = len(nb.cells)
    nb.cells.insert(0, nbformat.v4.new_code_cell(RECORD_CELL))
    nb.cells.append(nbformat.v4.new_code_cell(CHECK_CELL))
    folder = work / "notebooks" / path.parent.relative_to(ROOT)
    folder.mkdir(parents=True, exist_ok=True)
    # allow_errors: every failing cell of the notebook is reported, not only the first
    client = NotebookClient(nb, timeout=CELL_TIMEOUT_S, kernel_name="python3", allow_errors=True,
                            record_timing=False, resources={"metadata": {"path": str(folder)}})
    cell_started: dict[int, tuple[float, float | None]] = {}
    cell_times: list[dict] = []

    def kernel_cpu() -> float | None:
        """CPU seconds (user + system, all threads) the kernel process has used so far, as the browser tests count it."""
        pid = getattr(getattr(client.km, "provisioner", None), "pid", None) if client.km else None
        if pid is None:  # psutil.Process(None) would be this process
            return None
        try:
            return sum(psutil.Process(pid).cpu_times()[:2])
        except psutil.Error:
            return None

    def note_start(cell, cell_index: int) -> None:
        cell_started[cell_index] = (time.perf_counter(), kernel_cpu())

    def note_end(cell, cell_index: int, execute_reply) -> None:
        started_wall, started_cpu = cell_started.get(cell_index, (time.perf_counter(), None))
        seconds, cpu_now = time.perf_counter() - started_wall, kernel_cpu()
        cpu = None if cpu_now is None or started_cpu is None else cpu_now - started_cpu
        where = f"cell {cell_index - 1} (id {cell.get('id')})" if cell_index else "added record cell"
        cell_times.append({"cell": where, "wall_s": round(seconds, 2), "cpu_s": None if cpu is None else round(cpu, 2)})
        if slow_cells is not None and seconds >= slow_cells:  # where a long notebook spends its time
            cpu_text = "" if cpu is None else f", kernel CPU {cpu:.0f} s"
            print(f"    {where}: {seconds:.0f} s{cpu_text}  {_first_line(cell.source)}", flush=True)

    client.on_cell_start, client.on_cell_executed = note_start, note_end
    start = time.perf_counter()
    name = path.relative_to(ROOT).as_posix()
    errors, expected, summary = [], [], None
    try:
        client.execute()
    except Exception as error:  # a cell timeout or a dead kernel stops the notebook
        errors.append({"cell": "execution", "code": "", "error": f"{type(error).__name__}: {error}"[:600]})
    seconds = time.perf_counter() - start
    if executed is not None:  # the executed copy, outputs included, for reading what happened
        target = executed / path.relative_to(ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, target)
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                where = "added check cell" if index == len(nb.cells) - 1 else f"cell {index - 1} (id {cell.get('id')})"
                found = {"cell": where, "code": _first_line(cell.source),
                         "error": f"{output.get('ename')}: {output.get('evalue')}"[:600]}
                if random_weights and _needs_learned_weights(name, cell, output):
                    expected.append({**found, "code": NEEDS_LEARNED_WEIGHTS[(name, cell.get("id"))]})
                else:
                    errors.append(found)
        # the kernel may flush a print in several stream outputs: join them first
        text = "".join(o.get("text", "") for o in cell.get("outputs", [])
                       if o.get("output_type") == "stream" and o.get("name") == "stdout")
        for line in text.splitlines():
            if line.startswith(MARK):
                try:
                    summary = json.loads(line[len(MARK):])
                except ValueError:
                    pass  # reported below as "no summary printed"
    if summary is None and not errors:
        errors.append({"cell": "added check cell", "code": "", "error": "no summary printed"})
    return {"notebook": name, "sha256": version, "seconds": seconds, "cells": original,
            "summary": summary, "errors": errors, "expected_with_random_weights": expected,
            "cell_times": cell_times}


def _write_report(path: Path | None, results: list[dict], hub) -> None:
    """The results so far (and the hub's request log) as JSON, rewritten after each notebook."""
    if path is not None:
        requests = [(r.method, r.path, r.status) for r in hub.requests] if hub is not None else []
        path.write_text(json.dumps({"results": results, "requests": requests}, indent=1), encoding="utf-8")


def _prepare_course_cache(course_cache: Path) -> None:
    """The fresh course cache as `make lab` leaves it: course_utils.prepare's VADER tables, nothing else.

    A learner's `make lab` fetches them with pip once; the rehearsal copies the prepared
    folder instead, so the kernels never need the package index (only 127.0.0.1).
    """
    from course_utils import data

    data.prepare_vader(offline=False)  # fast when prepared; else pip, as `make prepare`
    shutil.copytree(data.vader_dir(), course_cache / "vader")


def _start_local_hub(work: Path):
    from tests.online.hub import LocalHub
    from tests.online.imdb_replica import ARCHIVE_NAME, build_imdb_replica
    from tests.online.replicas import build_all

    started = time.perf_counter()
    folders = build_all()
    archive, sha256 = build_imdb_replica()
    hub = LocalHub(folders, files={ARCHIVE_NAME: archive}).start()
    print(f"local hub {hub.url}: {', '.join(folders)} and {ARCHIVE_NAME} "
          f"(replicas ready in {time.perf_counter() - started:.0f} s)", flush=True)
    return hub, (hub.file_url(ARCHIVE_NAME), sha256)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="notebooks to run (default: all, with solutions)")
    parser.add_argument("--real", action="store_true", help="use the real hub and IMDb server (needs internet)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (caches, executed copies)")
    parser.add_argument("--report", type=Path, help="also write the results as JSON to this file")
    parser.add_argument("--executed", type=Path, help="save the executed notebooks (with outputs) in this folder")
    parser.add_argument("--slow-cells", type=float, metavar="S",
                        help="print each cell that takes S seconds or more (wall clock; its kernel CPU time too)")
    args = parser.parse_args(argv)
    paths = [p.resolve() for p in args.notebooks] or all_notebooks()

    work = Path(tempfile.mkdtemp(prefix="online-rehearsal-"))
    hub, imdb = None, None
    results = []
    started = time.perf_counter()
    try:
        if not args.real:
            hub, imdb = _start_local_hub(work)
        _prepare_course_cache(work / "course")
        # computed BEFORE os.environ is cleared: the kernels keep the caller's PATH, HOME, locale and
        # thread settings (OMP_NUM_THREADS), as a learner's kernel does, with only the offline variables gone
        environment = _environment(work, hub.url if hub else None, imdb)
        assert "PATH" not in os.environ or "PATH" in environment
        os.environ.clear()
        os.environ.update(environment)
        for path in paths:
            result = run_notebook(path, work, args.executed, random_weights=not args.real, slow_cells=args.slow_cells)
            results.append(result)
            cpu = (result["summary"] or {}).get("cpu_s")
            status = "ok" if not result["errors"] else f"FAILED ({len(result['errors'])} errors)"
            print(f"{result['notebook']:<48} {result['seconds']:7.1f} s"
                  f"{f'  (kernel CPU {cpu:.0f} s)' if cpu is not None else ''}  {status}", flush=True)
            for error in result["errors"]:
                print(f"    {error['cell']}: {error['code']}\n      {error['error']}", flush=True)
            for error in result["expected_with_random_weights"]:
                print(f"    expected with random weights, {error['cell']}: {error['code']}", flush=True)
            _write_report(args.report, results, hub)
    finally:
        if hub is not None:
            hub.stop()
        _write_report(args.report, results, hub)
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    total = time.perf_counter() - started
    label = "online" if args.real else "online-rehearsal"
    failed = [r for r in results if r["errors"]]
    if failed or len(results) < len(paths):
        print(f"{label}: {len(failed)} of {len(paths)} notebooks failed in {total:.0f} s")
        return 1
    print(f"{label}: {len(results)} notebooks passed in {total:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
