"""Fixtures: a real `tollgate serve` process for the session, and real uvicorn servers.

The server binary comes from `TOLLGATE_BIN` (default /tmp/tollgate-sdk-bin).
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from tollgate import Tollgate

from support import Server, UvicornThread, run_server

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]


@pytest.fixture(scope="session")
def server() -> Iterator[Server]:
    binary = os.environ.get("TOLLGATE_BIN", "/tmp/tollgate-sdk-bin")
    if not Path(binary).exists():
        pytest.fail(f"no tollgate binary at {binary} (set TOLLGATE_BIN)")
    with run_server(binary) as s:
        yield s


@dataclass
class Workspace:
    url: str
    admin_key: str

    def client(self, key: str | None = None, **kw: Any) -> Tollgate:
        return Tollgate(key or self.admin_key, base_url=self.url, **kw)


@pytest.fixture(scope="session")
def apex(server: Server) -> Workspace:
    """The default workspace, on Apex's catalog."""
    with Tollgate(server.admin_key, base_url=server.url) as admin:
        admin.apply_catalog((REPO / "examples" / "catalogs" / "apex.yaml").read_text())
    return Workspace(server.url, server.admin_key)


@pytest.fixture(scope="session")
def lab(server: Server) -> Workspace:
    """A workspace of its own on the tests' catalog (tests/lab.yaml)."""
    with Tollgate(server.admin_key, base_url=server.url) as admin:
        ws = admin.create_workspace("sdk-lab")
    key = ws["admin_key"]
    with Tollgate(key, base_url=server.url) as admin:
        admin.apply_catalog((HERE / "lab.yaml").read_text())
    return Workspace(server.url, key)


@dataclass
class NewCustomer:
    id: str
    key: str
    subscription: str


def make_customer(ws: Workspace, plan: str | None, *, clock: str | None = None) -> NewCustomer:
    with ws.client() as admin:
        cid = f"c-{uuid.uuid4().hex[:12]}"
        admin.create_customer(cid, test_clock=clock)
        sub = admin.create_subscription(cid, plan)["id"] if plan else ""
        key = admin.create_key(cid, name="tests")["secret"]
    return NewCustomer(cid, key, sub)


@pytest.fixture
def customer_factory() -> Callable[..., NewCustomer]:
    return make_customer


@pytest.fixture
def serve() -> Callable[[Any], UvicornThread]:
    return UvicornThread
