"""The Python verifier on the golden files the Rust crate writes and checks
(crates/tollgate-verify/tests/golden), and on RFC 6962 test vectors (transparency-dev/merkle's
testonly data, as in the Rust tests)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from tollgate.verify import (
    CheckpointError,
    LicenseError,
    leaf_hash,
    merkle_root,
    read_license_payload,
    verify_checkpoint,
    verify_consistency,
    verify_inclusion,
    verify_license,
)

GOLDEN = Path(__file__).resolve().parents[3] / "crates" / "tollgate-verify" / "tests" / "golden"


def _keys() -> dict[str, Any]:
    value: dict[str, Any] = json.loads((GOLDEN / "keys.json").read_text())
    return value


def _cases() -> list[dict[str, Any]]:
    value: list[dict[str, Any]] = json.loads((GOLDEN / "cases.json").read_text())
    return value


@pytest.mark.parametrize("case", _cases(), ids=lambda c: f"{c['file']}:{c['expect']}")
def test_golden_case(case: dict[str, Any]) -> None:
    keys = _keys()
    text = (GOLDEN / case["file"]).read_text()
    got: str
    if case["file"].endswith(".lic"):
        now = datetime.fromisoformat(case["now"].replace("Z", "+00:00"))
        try:
            lic = verify_license(text, keys["license_keys"], now=now, machine=case.get("machine"))
            got = lic.status
        except LicenseError as e:
            got = e.reason
    else:
        pairs = [(k["name"], k["key"]) for k in keys["checkpoint_keys"]]
        try:
            cp = verify_checkpoint(text, pairs)
            assert cp.size == case["size"]
            assert cp.root.hex() == case["root"]
            got = "valid"
        except CheckpointError as e:
            got = e.reason
    assert got == case["expect"]


def test_verified_license_reads_its_grants() -> None:
    text = (GOLDEN / "license_valid.lic").read_text()
    lic = verify_license(
        text, _keys()["license_keys"], now=datetime(2026, 6, 1, tzinfo=timezone.utc)
    )
    assert lic.has_feature("sso") and not lic.has_feature("white_label")
    assert lic.limits["seats"] == 25
    assert lic.plan == "onprem_enterprise"
    assert read_license_payload(text)["id"] == lic.id


def test_every_flipped_payload_byte_is_caught() -> None:
    import base64

    text = (GOLDEN / "license_valid.lic").read_text()
    lines = text.splitlines()
    blank = lines.index("")
    payload = base64.b64decode("".join(lines[blank + 1 : -1]))
    now = datetime(2026, 6, 1, tzinfo=timezone.utc)
    for i in range(0, len(payload), 7):
        bad = bytearray(payload)
        bad[i] ^= 0x20
        body = base64.b64encode(bytes(bad)).decode()
        tampered = "\n".join(lines[: blank + 1] + [body] + lines[-1:]) + "\n"
        with pytest.raises(LicenseError) as e:
            verify_license(tampered, _keys()["license_keys"], now=now)
        assert e.value.reason == "bad_signature"


LEAVES = [bytes.fromhex(h) for h in ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"]]


def test_rfc6962_roots_and_proofs() -> None:
    hashes = [leaf_hash(x) for x in LEAVES]
    assert merkle_root(hashes).hex() == "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"
    assert merkle_root(hashes[:3]).hex() == "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77"
    root8 = merkle_root(hashes)
    proof = [
        bytes.fromhex("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        bytes.fromhex("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
        bytes.fromhex("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
    ]
    assert verify_inclusion(5, 8, hashes[5], proof, root8)
    assert not verify_inclusion(4, 8, hashes[5], proof, root8)
    consistency = [
        bytes.fromhex("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
        bytes.fromhex("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
        bytes.fromhex("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
    ]
    assert verify_consistency(6, 8, merkle_root(hashes[:6]), root8, consistency)
    assert not verify_consistency(6, 8, merkle_root(hashes[:5]), root8, consistency)
