import os

import pytest

# Tests never reach the Hub: without these, a missing Hub id costs ~23 s of retries.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


@pytest.fixture
def mirror_dir():
    """The data mirror named by VAEZOO_DATA_DIR; tests that need it fail (never skip) without it."""
    path = os.environ.get("VAEZOO_DATA_DIR")
    if not path or not os.path.isdir(path):
        pytest.fail(
            f"this test needs the dataset mirror: set VAEZOO_DATA_DIR to its folder "
            f"(e.g. VAEZOO_DATA_DIR=../shared/data); got {path!r}"
        )
    return path
