#!/usr/bin/env python3
"""Verifies captured Tollgate webhook deliveries with the `standardwebhooks` package (PyPI), an
implementation of the Standard Webhooks spec independent of Tollgate's.

Input: a file of JSON lines, one delivery each: {"secrets": ["whsec_..."], "headers": {...},
"body": "..."}, as `crates/tollgate-server/tests/webhooks.rs` writes them when
TOLLGATE_WEBHOOK_CAPTURE names the file (`.ci/webhooks.sh` runs both). Every delivery must verify
with EACH of its secrets (during a rotation both sign), within the package's timestamp
tolerance. Prints `verified N` and exits 0, or names the first failure and exits 1.
"""

import json
import sys

from standardwebhooks.webhooks import Webhook


def main() -> int:
    with open(sys.argv[1], encoding="utf-8") as f:
        deliveries = [json.loads(line) for line in f if line.strip()]
    checked = 0
    for i, d in enumerate(deliveries):
        for secret in d["secrets"]:
            try:
                payload = Webhook(secret).verify(d["body"], d["headers"])
            except Exception as e:  # noqa: BLE001 - report any failure with its delivery
                print(f"delivery {i} ({d['headers'].get('webhook-id')}): {e!r}")
                return 1
            if set(payload) != {"type", "timestamp", "data"}:
                print(f"delivery {i}: body keys {sorted(payload)}")
                return 1
            checked += 1
    if checked == 0:
        print("nothing to verify")
        return 1
    print(f"verified {checked}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
