"""Before the fuzz run (.ci/fuzz.sh): connect the demo company to the mounted sandbox Dinero.

With an API key of the sandbox's Pro organization, the chart sync that connecting starts, and
account mappings, so the fuzzer finds categories, tax codes, deposit accounts and can create
data sources. Usage:
`python tests/fuzz/prepare.py BASE_URL TOKEN`.
"""

from __future__ import annotations

import sys
import time

import httpx
from dinero_sandbox.seed import API_KEY, PRO_ORGANIZATION

COMPANY = "/v1/companies/demo"


def prepare(base_url: str, token: str) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=30.0) as http:
        connected = http.put(
            f"{COMPANY}/dinero/connection",
            json={"method": "api_key", "organization_id": PRO_ORGANIZATION, "api_key": API_KEY},
        )
        connected.raise_for_status()
        deadline = time.monotonic() + 60  # connecting enqueues the first sync
        while not (sync := http.get(f"{COMPANY}/dinero/sync").json())["succeeded_at"]:
            if sync["status"] == "failed" or time.monotonic() > deadline:
                raise SystemExit(f"prepare: the chart sync did not succeed: {sync}")
            time.sleep(0.5)
        accounts = [a["account_number"] for a in http.get(f"{COMPANY}/deposit-accounts").json()]
        http.put(
            f"{COMPANY}/dinero/settings",
            json={
                "deposit_account": accounts[0],
                "out_of_pocket_account": accounts[0],
                "reimbursement_account": accounts[0],
                "top_up_account": None,
            },
        ).raise_for_status()
    print(f"prepare: demo connected to sandbox organization {PRO_ORGANIZATION}, chart synced")  # noqa: T201


if __name__ == "__main__":
    prepare(sys.argv[1], sys.argv[2])
