import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "gridos"
ADMIN = "B10C30114A7A5CE22215A9196B7A4E014FFA39D1"


@pytest.fixture
def runtime_key() -> bytes:
    return (EXAMPLE / "example-secret-keys" / "runtime-production.EXAMPLE-ONLY.asc").read_bytes()


@pytest.fixture
def bundle(tmp_path) -> Path:
    """A copy of the example's production bundle, free to replace."""
    copy = tmp_path / "production.bundle"
    shutil.copy2(EXAMPLE / "secrets" / "production.bundle", copy)
    return copy
