"""The one environment that stored notebook outputs are made in and checked in.

`make outputs` (scripts/make_outputs.py) and `pytest` (conftest.py) both apply it, so
what nbval compares was produced under exactly these variables.
"""

CANONICAL_ENV = {
    "COURSE_OFFLINE": "1",  # stand-ins, generated data: no network, same outputs everywhere
    "HF_HUB_OFFLINE": "1",  # never let transformers wait on the hub
    "HF_DATASETS_OFFLINE": "1",
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
    "COURSE_DEVICE": "cpu",  # stored outputs are CPU results
    "COURSE_QUICK": "1",  # the quick mode of long notebooks
    "OMP_NUM_THREADS": "1",  # deterministic kernels; two notebooks may run side by side
    "MKL_NUM_THREADS": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "PYTHONHASHSEED": "0",
    "PYDEVD_DISABLE_FILE_VALIDATION": "1",  # debugpy's frozen-modules note on stderr
}


def apply() -> None:
    import os

    os.environ.update(CANONICAL_ENV)
