"""Offline verification of Tollgate's license files, ledger checkpoints and Merkle proofs.

The Python twin of the Rust crate ``tollgate-verify`` (docs/TRUST.md): both run the same golden
files (``crates/tollgate-verify/tests/golden``). Needs the ``cryptography`` package
(``pip install "tollgate[verify]"``); it never reads the clock unless ``now`` is left out, and
it never touches the network.

.. code-block:: python

    from tollgate.verify import verify_license, LicenseError

    try:
        lic = verify_license(text, keys=["<base64 public key from GET /v1/license_keys>"])
    except LicenseError as e:
        print("refused:", e.reason)        # expired, bad_signature, unknown_key, ...
    else:
        print(lic.plan, lic.features, lic.limits, lic.status)
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable, Literal, Sequence

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

FORMAT = "tollgate-license/1"
_BEGIN = "-----BEGIN TOLLGATE LICENSE-----"
_END = "-----END TOLLGATE LICENSE-----"
_DASH = "\u2014 "

__all__ = [
    "FORMAT",
    "LicenseError",
    "License",
    "key_id",
    "verify_license",
    "read_license_payload",
    "CheckpointError",
    "Checkpoint",
    "verify_checkpoint",
    "leaf_hash",
    "node_hash",
    "merkle_root",
    "root_from_inclusion_proof",
    "verify_inclusion",
    "verify_consistency",
]


class LicenseError(Exception):
    """A license file refused. ``reason`` is the stable code: ``malformed``,
    ``unsupported_format``, ``unknown_key``, ``bad_signature``, ``not_yet_valid``, ``expired``,
    ``wrong_machine``."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class License:
    """A verified license: what it grants and where it stands."""

    id: str
    issuer: str
    customer: str
    plan: str
    features: list[str]
    limits: dict[str, int]
    issued: datetime
    expires: datetime
    grace_seconds: int
    machine: str | None
    key_id: str
    status: Literal["active", "grace"]
    grace_ends: datetime
    payload: dict[str, Any] = field(repr=False)

    def has_feature(self, name: str) -> bool:
        return name in self.features


def _b64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise LicenseError("malformed", f"{what} is not base64") from None


def _public_key(raw: str | bytes) -> Ed25519PublicKey:
    data = raw if isinstance(raw, bytes) else base64.b64decode(raw.strip(), validate=True)
    if len(data) != 32:
        raise ValueError("an Ed25519 public key is 32 bytes")
    return Ed25519PublicKey.from_public_bytes(data)


def key_id(public_key: str | bytes) -> str:
    """The id license files name a key by: 16 hex characters of
    SHA-256("tollgate-key/1\\n" || key)."""
    data = public_key if isinstance(public_key, bytes) else base64.b64decode(public_key, validate=True)
    return hashlib.sha256(b"tollgate-key/1\n" + data).hexdigest()[:16]


def _parse_time(text: str) -> datetime:
    # RFC 3339 in UTC as Tollgate writes it; fractions beyond microseconds are cut.
    m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?Z", text)
    if not m:
        raise LicenseError("malformed", f"not a UTC timestamp: {text!r}")
    frac = (m.group(2) or "")[:7]
    return datetime.fromisoformat(m.group(1) + frac).replace(tzinfo=timezone.utc)


def _armor(text: str) -> tuple[dict[str, str], bytes]:
    lines = [line.strip() for line in text.splitlines()]
    try:
        start = lines.index(_BEGIN)
    except ValueError:
        raise LicenseError("malformed", "no BEGIN TOLLGATE LICENSE line") from None
    headers: dict[str, str] = {}
    i = start + 1
    while i < len(lines) and lines[i]:
        name, sep, value = lines[i].partition(":")
        if not sep:
            raise LicenseError("malformed", "a header line without ':'")
        if name.strip() in headers:
            raise LicenseError("malformed", "a header given twice")
        headers[name.strip()] = value.strip()
        i += 1
    body = []
    for line in lines[i + 1 :]:
        if line == _END:
            break
        body.append(line)
    else:
        raise LicenseError("malformed", "no END TOLLGATE LICENSE line")
    if "Format" not in headers:
        raise LicenseError("malformed", "no Format header")
    if headers["Format"] != FORMAT:
        raise LicenseError("unsupported_format", headers["Format"])
    if set(headers) != {"Format", "Key", "Signature"}:
        raise LicenseError("malformed", "unknown or missing headers")
    return headers, _b64("".join(body), "the payload")


def read_license_payload(text: str) -> dict[str, Any]:
    """The payload of a license file, UNVERIFIED (to show it; never to trust it)."""
    _, payload = _armor(text)
    try:
        value = json.loads(payload)
    except ValueError:
        raise LicenseError("malformed", "the payload is not JSON") from None
    if not isinstance(value, dict):
        raise LicenseError("malformed", "the payload is not an object")
    return value


def verify_license(
    text: str,
    keys: Iterable[str | bytes],
    now: datetime | None = None,
    machine: str | None = None,
) -> License:
    """Verifies an armored license file against trusted public keys (base64 or raw 32 bytes):
    format, key, signature over ``"tollgate-license/1\\n" || payload``, validity at ``now``
    (default: the current time), and the machine binding when ``machine`` is given."""
    headers, payload = _armor(text)
    trusted = {key_id(k): k for k in keys}
    kid = headers["Key"]
    if kid not in trusted:
        raise LicenseError("unknown_key", kid)
    signature = _b64(headers["Signature"], "the signature")
    if len(signature) != 64:
        raise LicenseError("malformed", "the signature is not 64 bytes")
    try:
        _public_key(trusted[kid]).verify(signature, FORMAT.encode() + b"\n" + payload)
    except InvalidSignature:
        raise LicenseError("bad_signature") from None
    try:
        doc = json.loads(payload)
        if doc["format"] != FORMAT:
            raise LicenseError("malformed", "the payload's format differs from the header's")
        issued = _parse_time(doc["issued"])
        expires = _parse_time(doc["expires"])
        grace = int(doc.get("grace_seconds", 0))
        lic_machine = doc.get("machine")
        features = [str(f) for f in doc.get("features", [])]
        limits = {str(k): int(v) for k, v in doc.get("limits", {}).items()}
        ids = {k: str(doc[k]) for k in ("id", "issuer", "customer", "plan")}
    except (KeyError, TypeError, ValueError) as e:
        raise LicenseError("malformed", f"payload: {e}") from None
    now = now or datetime.now(timezone.utc)
    grace_ends = expires + timedelta(seconds=grace)
    if now < issued:
        raise LicenseError("not_yet_valid", doc["issued"])
    if now >= grace_ends:
        raise LicenseError("expired", doc["expires"])
    if lic_machine is not None and machine is not None and lic_machine != machine:
        raise LicenseError("wrong_machine")
    return License(
        features=features,
        limits=limits,
        issued=issued,
        expires=expires,
        grace_seconds=grace,
        machine=lic_machine,
        key_id=kid,
        status="active" if now < expires else "grace",
        grace_ends=grace_ends,
        payload=doc,
        **ids,
    )


# Merkle trees (RFC 6962 / RFC 9162 section 2.1)


def leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """The root over leaf hashes."""
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return leaves[0]
    k = 1
    while k << 1 < n:
        k <<= 1
    return node_hash(merkle_root(leaves[:k]), merkle_root(leaves[k:]))


def root_from_inclusion_proof(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    if index >= size or index < 0:
        raise ValueError("index out of range")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise ValueError("proof too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ValueError("proof too short")
    return r


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes) -> bool:
    try:
        return root_from_inclusion_proof(index, size, leaf, proof) == root
    except ValueError:
        return False


def verify_consistency(
    size1: int, size2: int, root1: bytes, root2: bytes, proof: Sequence[bytes]
) -> bool:
    if size1 > size2 or size1 < 0:
        return False
    if size1 == size2:
        return not proof and root1 == root2
    if size1 == 0:
        return not proof
    if not proof:
        return False
    path = list(proof)
    if size1 & (size1 - 1) == 0:
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == root1 and sr == root2


# Checkpoints (signed-note style)


class CheckpointError(Exception):
    """A checkpoint refused; ``reason`` is ``malformed``, ``unknown_key`` or ``bad_signature``."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes


def _note_key_hash(name: str, key: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n\x01" + key).digest()[:4]


def verify_checkpoint(note: str, keys: Iterable[tuple[str, str | bytes]]) -> Checkpoint:
    """Verifies a signed checkpoint against trusted ``(name, public key)`` pairs: at least one
    signature by a trusted key, and every such signature valid."""
    body, sep, sigs = note.partition("\n\n")
    if not sep:
        raise CheckpointError("malformed", "no empty line after the body")
    body += "\n"
    lines = body.split("\n")[:-1]
    if len(lines) != 3 or not lines[0]:
        raise CheckpointError("malformed", "the body is not three lines")
    origin, size_text, root_text = lines
    if not re.fullmatch(r"0|[1-9][0-9]*", size_text):
        raise CheckpointError("malformed", "the size is not a number")
    try:
        root = base64.b64decode(root_text, validate=True)
    except (binascii.Error, ValueError):
        raise CheckpointError("malformed", "the root is not base64") from None
    if len(root) != 32:
        raise CheckpointError("malformed", "the root is not 32 bytes")
    trusted = [
        (name, raw := (k if isinstance(k, bytes) else base64.b64decode(k, validate=True)), _note_key_hash(name, raw))
        for name, k in keys
    ]
    verified = 0
    for line in sigs.splitlines():
        if not line.startswith(_DASH):
            raise CheckpointError("malformed", "a signature line without the dash")
        name, _, b64 = line[len(_DASH) :].partition(" ")
        try:
            raw_sig = base64.b64decode(b64, validate=True)
        except (binascii.Error, ValueError):
            raise CheckpointError("malformed", "a signature that is not base64") from None
        if len(raw_sig) != 68:
            raise CheckpointError("malformed", "a signature of the wrong length")
        for key_name, key, khash in trusted:
            if key_name == name and khash == raw_sig[:4]:
                try:
                    _public_key(key).verify(raw_sig[4:], body.encode())
                except InvalidSignature:
                    raise CheckpointError("bad_signature", name) from None
                verified += 1
                break
    if verified == 0:
        raise CheckpointError("unknown_key")
    return Checkpoint(origin=origin, size=int(size_text), root=root)
