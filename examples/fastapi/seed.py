"""Sets up Apex case 4 on a running server: the catalog, a test clock at 09:00, customer `apex-demo`
on `free` and its key (printed). Needs TOLLGATE_URL and TOLLGATE_API_KEY (the admin key)."""

from __future__ import annotations

from pathlib import Path

from tollgate import ConflictError, Tollgate

CATALOG = Path(__file__).resolve().parents[1] / "catalogs" / "apex.yaml"

with Tollgate() as admin:
    admin.apply_catalog(CATALOG.read_text())
    clock = admin.create_test_clock("2026-11-10T09:00:00Z", name="apex case 4")
    try:
        admin.create_customer("apex-demo", name="Apex demo", test_clock=clock["id"])
        admin.create_subscription("apex-demo", "free")
    except ConflictError:
        raise SystemExit("customer apex-demo exists already: use a fresh --data-dir")
    key = admin.create_key("apex-demo", name="demo")["secret"]
    print(f"export CLOCK={clock['id']}")
    print(f"export CUSTOMER_KEY={key}")
