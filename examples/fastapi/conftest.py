"""Reuses the SDK tests' support: a real server process and a real uvicorn."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Iterator

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "clients" / "python" / "tests"))

from support import Server, run_server  # noqa: E402


@pytest.fixture(scope="session")
def server() -> Iterator[Server]:
    binary = os.environ.get("TOLLGATE_BIN", "/tmp/tollgate-sdk-bin")
    if not Path(binary).exists():
        pytest.fail(f"no tollgate binary at {binary} (set TOLLGATE_BIN)")
    with run_server(binary) as s:
        yield s
