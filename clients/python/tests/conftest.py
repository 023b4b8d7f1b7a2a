"""Fixtures: a real `tollgate serve` process for the session, and real uvicorn servers.

The server binary comes from `TOLLGATE_BIN` (default /tmp/tollgate-sdk-bin).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx
import pytest
import uvicorn

from tollgate import Tollgate

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    url: str
    admin_key: str
    process: subprocess.Popen[bytes]
    log: Path


@contextlib.contextmanager
def run_server(binary: str) -> Iterator[Server]:
    with tempfile.TemporaryDirectory(prefix="tollgate-py-") as tmp:
        port = free_port()
        admin = "tg_admin_" + secrets.token_hex(16)
        log = Path(tmp) / "server.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [binary, "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", str(Path(tmp) / "data")],
                env={**os.environ, "TOLLGATE_ADMIN_KEY": admin},
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 20
            while True:
                try:
                    if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"tollgate did not start:\n{log.read_text()}")
                time.sleep(0.05)
            yield Server(url, admin, proc, log)
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


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


class UvicornThread:
    """A real uvicorn server on a real port, in a thread."""

    def __init__(self, app: Any) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> UvicornThread:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def serve() -> Callable[[Any], UvicornThread]:
    return UvicornThread
