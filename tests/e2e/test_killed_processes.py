"""Exactly once, with processes killed: workers SIGKILLed mid-export, the API SIGKILLed while
webhooks arrive. What counts is what Dinero holds at the end, read from the sandbox's records.
"""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections import Counter
from typing import Any

import httpx
import pytest

from tests.e2e.stack import PRO_ORG, Process, Stack, eventually, new_company
from tests.e2e.test_production_shape import (
    connect_and_map,
    item,
    items_by_external_id,
    receipt,
)
from tests.exports.intake_support import signed, webhook_body

EXPENSES, REIMBURSEMENTS, TOP_UPS = 50, 20, 20
SETTLED = {"awaiting_approval", "booked"}


def dinero_records(stack: Stack) -> dict[str, list[dict[str, Any]]]:
    with stack.dinero() as dinero:
        org = f"/organizations/{PRO_ORG}"
        return {
            "vouchers": dinero.get(f"{org}/vouchers/purchase?include_deleted=true").json(),
            "manual": dinero.get(f"{org}/vouchers/manual").json(),
            "ledger": dinero.get(f"{org}/ledgeritems").json(),
            "files": dinero.get(f"{org}/files").json(),
        }


def exactly_once_report(
    stack: Stack, company: str, items: dict[str, dict[str, Any]]
) -> dict[str, int]:
    """Count, from Dinero's side, duplicates, missing items and files attached to nothing."""
    held = dinero_records(stack)
    references = Counter(v.get("ExternalReference") for v in held["vouchers"])
    ledger_ids = Counter(str(li["Id"]) for li in held["ledger"])
    duplicates = missing = 0
    for entry in items.values():
        if entry["type"].endswith("_expense"):
            seen = references[f"bridge:{entry['id']}"]
        else:
            seen = ledger_ids[str(entry["dinero"]["ledger_item_id"])] if entry["dinero"] else 0
        duplicates += max(seen - 1, 0)
        missing += seen == 0
    attached = {
        r.get("FileGuid")
        for r in [*held["vouchers"], *held["manual"], *held["ledger"]]
        if not r.get("DeletedAt")
    }
    prefixes = tuple(f"{key}-" for key in items)
    ours = [f for f in held["files"] if str(f["Name"]).startswith(prefixes)]
    orphans = [f for f in ours if f["FileGuid"] not in attached]
    return {
        "items exported": len(items) - missing,
        "duplicates": duplicates,
        "missing": missing,
        "orphan files": len(orphans),
    }


class Killer(threading.Thread):
    """SIGKILLs a random one of `victims` at random moments, restarting it at once.

    With `wait_ready`, the restarted victim is waited for before the next pause. With
    `only_up`, a kill waits (after its pause) until every victim is up and takes a random one:
    a kill never lands in a restart's start-up, where no job runs, and the others keep working
    meanwhile. (A process that starts in ~1.5 s of CPU, killed every ~0.75 s on two cores,
    otherwise spends whole minutes restarting and the exports barely move.) A victim that
    exited by itself is started again without counting as a kill.
    """

    def __init__(
        self,
        victims: list[Process],
        *,
        pause: tuple[float, float],
        seed: int,
        wait_ready: bool = False,
        only_up: bool = False,
        most: int = 1000,
    ) -> None:
        super().__init__(daemon=True)
        self.victims = victims
        self.pause = pause
        self.wait_ready = wait_ready
        self.only_up = only_up
        self.most = most
        self.random = random.Random(seed)
        self.stopping = threading.Event()
        self.kills = 0

    def _all_up(self) -> bool:
        """Until every victim is up; False when told to stop first."""
        while not all(victim.up for victim in self.victims):
            for victim in self.victims:
                if not victim.alive:
                    victim.start()
            if self.stopping.wait(0.05):
                return False
        return True

    def run(self) -> None:
        while not self.stopping.wait(self.random.uniform(*self.pause)):
            if self.only_up and not self._all_up():
                return
            victim = self.random.choice(self.victims)
            victim.kill()
            self.kills += 1
            victim.start()
            if self.wait_ready:
                victim.wait_ready()
            if self.kills >= self.most:
                return

    def finish(self) -> int:
        self.stopping.set()
        self.join(timeout=30)
        for victim in self.victims:
            if not victim.alive:
                victim.start()
            victim.wait_ready()
        return self.kills


def test_workers_killed_at_random_leave_each_item_in_dinero_exactly_once(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    company = new_company()
    api = connect_and_map(stack, company)
    payload = [
        *(item(f"exp{n}", "card_expense", 1000 + n, receipts=[receipt()]) for n in range(EXPENSES)),
        *(item(f"rb{n}", "reimbursement", 2000 + n) for n in range(REIMBURSEMENTS)),
        *(item(f"tu{n}", "wallet_top_up", 3000 + n) for n in range(TOP_UPS)),
    ]
    total = len(payload)
    killer = Killer(stack.workers, pause=(0.3, 1.2), seed=int(time.time()), only_up=True)
    killer.start()
    try:
        for start in range(0, total, 30):
            answer = api.post(
                f"/v1/companies/{company}/exports", json={"items": payload[start : start + 30]}
            )
            assert answer.status_code == 202, answer.text

        def progress() -> bool:
            items = items_by_external_id(api, company)
            settled = sum(i["status"] in SETTLED for i in items.values())
            return settled >= total // 2 and killer.kills >= 10

        # Keep killing until half is through and at least ten kills happened.
        eventually(progress, timeout=120, every=0.5, what="half the items past ten kills")
    finally:
        kills = killer.finish()

    def settled() -> dict[str, dict[str, Any]] | None:
        items = items_by_external_id(api, company)
        done = len(items) == total and all(i["status"] in SETTLED for i in items.values())
        return items if done else None

    items = eventually(settled, timeout=120, every=0.5, what="every item settled")
    assert Counter(i["status"] for i in items.values()) == {
        "awaiting_approval": EXPENSES,
        "booked": REIMBURSEMENTS + TOP_UPS,
    }
    report = exactly_once_report(stack, company, items)
    with capsys.disabled():
        print(  # noqa: T201 - the proof the issue asks CI to print
            f"\n[workers killed] kills survived: {kills}, "
            + ", ".join(f"{k}: {v}" for k, v in report.items())
        )
    assert kills >= 10
    assert report == {"items exported": total, "duplicates": 0, "missing": 0, "orphan files": 0}


def test_api_killed_while_webhooks_arrive_exports_what_it_accepted_and_nothing_else(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    company = new_company()
    api = connect_and_map(stack, company)
    assert stack.api is not None
    killer = Killer(
        [stack.api], pause=(0.3, 1.5), seed=int(time.time()) + 1, wait_ready=True, most=3
    )
    accepted: set[str] = set()
    refused: set[str] = set()
    retried = Counter[str]()
    numbers = itertools.count()
    guard = threading.Lock()

    def send_until_done() -> None:
        """One of the platform's senders: webhooks one after another, retrying unanswered ones."""
        with httpx.Client(base_url=stack.api_url, timeout=10) as platform:
            while True:
                with guard:
                    n = next(numbers)
                if (n >= 60 and not killer.is_alive()) or n >= 1000:
                    return
                external_id = f"wh{n}"
                raw, headers = signed(
                    webhook_body(company, item(external_id, "reimbursement", 100 + n))
                )
                if n % 6 == 5:  # a forged one: must be refused and never exported
                    headers["webhook-signature"] = "v1,Zm9yZ2VkLXNpZ25hdHVyZS1vZi10aGUtcmlnaHQtbGVu"
                while True:  # Standard Webhooks senders retry what got no answer
                    try:
                        answer = platform.post(
                            "/v1/webhooks/expenses", content=raw, headers=headers
                        )
                    except httpx.TransportError:
                        retried["no answer"] += 1
                    else:
                        if answer.status_code < 500:
                            break
                        retried[str(answer.status_code)] += 1  # retried like no answer
                    time.sleep(0.1)
                with guard:
                    (accepted if 200 <= answer.status_code < 300 else refused).add(external_id)
                time.sleep(0.1)

    killer.start()
    try:
        senders = [threading.Thread(target=send_until_done, daemon=True) for _ in range(4)]
        for sender in senders:
            sender.start()
        for sender in senders:
            sender.join(timeout=100)
    finally:
        kills = killer.finish()

    sent = len(accepted) + len(refused)
    assert refused == {f"wh{n}" for n in range(sent) if n % 6 == 5}
    assert len(accepted) == sent - len(refused)

    def settled() -> dict[str, dict[str, Any]] | None:
        items = items_by_external_id(api, company)
        done = set(items) >= accepted and all(i["status"] == "booked" for i in items.values())
        return items if done else None

    items = eventually(settled, timeout=90, every=0.5, what="every accepted webhook booked")
    assert set(items) == accepted  # nothing refused was stored
    report = exactly_once_report(stack, company, items)
    with capsys.disabled():
        print(  # noqa: T201 - the proof the issue asks CI to print
            f"\n[api killed] kills survived: {kills}, retried tries: {dict(retried)}, "
            f"accepted: {len(accepted)}, refused: {len(refused)}, "
            + ", ".join(f"{k}: {v}" for k, v in report.items())
        )
    assert kills == 3
    assert report == {
        "items exported": len(accepted),
        "duplicates": 0,
        "missing": 0,
        "orphan files": 0,
    }


def test_workers_killed_while_reversing_undo_each_item_in_dinero_exactly_once(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    """A whole export reversed while workers are SIGKILLed at random: each draft is deleted,
    each approved voucher gets one booked reversing manual voucher and each booked ledger item
    one reversing ledger item: none twice, none missing, read from Dinero's records."""
    company = new_company()
    api = connect_and_map(stack, company)
    expenses, ledger = 16, 8
    payload = [
        *(item(f"rx{n}", "card_expense", 1500 + n) for n in range(expenses)),
        *(item(f"rr{n}", "reimbursement", 2500 + n) for n in range(ledger)),
    ]
    answer = api.post(f"/v1/companies/{company}/exports", json={"items": payload})
    assert answer.status_code == 202, answer.text
    export_id = answer.json()["id"]

    def settled() -> dict[str, dict[str, Any]] | None:
        items = items_by_external_id(api, company)
        done = len(items) == len(payload) and all(i["status"] in SETTLED for i in items.values())
        return items if done else None

    items = eventually(settled, timeout=120, every=0.5, what="every item exported")
    approved = {f"rx{n}" for n in range(0, expenses, 2)}  # the accountant approves half
    with stack.dinero() as dinero:
        for key in approved:
            guid = items[key]["dinero"]["voucher_guid"]
            done = dinero.post(f"/organizations/{PRO_ORG}/vouchers/purchase/{guid}/approve")
            assert done.status_code == 200, done.text

    # Dinero answers in 150 ms meanwhile, so the reversals (a few requests each) are still under
    # way when the first kills land.
    with stack.dinero() as dinero:
        slowed = dinero.patch("/config", json={"latency_ms": 150})
        assert slowed.status_code == 200, slowed.text
    killer = Killer(stack.workers, pause=(0.1, 0.6), seed=int(time.time()), only_up=True)
    killer.start()
    try:
        answer = api.post(
            f"/v1/companies/{company}/exports/{export_id}/reverse", json={"reason": "wrong batch"}
        )
        assert answer.status_code == 202, answer.text
        assert {i["outcome"] for i in answer.json()["items"]} == {"reversing"}

        during: list[int] = []  # kills seen while items were still being reversed

        def reversed_or_killed() -> bool:
            statuses = [i["status"] for i in items_by_external_id(api, company).values()]
            done = all(s == "reversed" for s in statuses)
            if not done:
                during.append(killer.kills)
            return killer.kills >= 5 or done

        eventually(reversed_or_killed, timeout=120, every=0.2, what="five kills")
    finally:
        kills = killer.finish()
        with stack.dinero() as dinero:
            dinero.patch("/config", json={"latency_ms": 0})

    def all_reversed() -> dict[str, dict[str, Any]] | None:
        now = items_by_external_id(api, company)
        return now if all(i["status"] == "reversed" for i in now.values()) else None

    items = eventually(all_reversed, timeout=180, every=0.5, what="every item reversed")
    reversals: dict[str, dict[str, Any]] = {}
    for key, entry in items.items():
        listed = api.get(f"/v1/companies/{company}/export-items/{entry['id']}/reversals")
        assert listed.status_code == 200, listed.text
        (reversal,) = listed.json()
        assert reversal["status"] == "done", reversal
        reversals[key] = reversal
    held = dinero_records(stack)
    manual = Counter(v.get("ExternalReference") for v in held["manual"])
    ledger_ids = Counter(str(li["Id"]) for li in held["ledger"])
    vouchers = {v["Guid"]: v for v in held["vouchers"]}
    report: Counter[str] = Counter()
    for key, reversal in reversals.items():
        reference = f"bridge-reversal:{reversal['id']}"
        if key in approved:
            report[reversal["kind"]] += 1
            assert reversal["kind"] == "manual_voucher"
            assert manual[reference] == 1, key
        elif key.startswith("rx"):
            report[reversal["kind"]] += 1
            assert reversal["kind"] == "draft_deleted"
            assert vouchers[items[key]["dinero"]["voucher_guid"]]["DeletedAt"], key
            assert manual[reference] == 0, key
        else:
            report[reversal["kind"]] += 1
            assert reversal["kind"] == "ledger_item"
            assert ledger_ids[reversal["id"]] == 1, key
    reversing = sum(n for ref, n in manual.items() if str(ref).startswith("bridge-reversal:"))
    with capsys.disabled():
        print(  # noqa: T201 - the proof, as the export's kill test prints its own
            f"\n[workers killed while reversing] kills survived: {kills}, "
            + ", ".join(f"{k}: {v}" for k, v in sorted(report.items()))
            + f", reversing manual vouchers in Dinero: {reversing}"
            + f", kills while reversing: {max(during, default=0)}"
        )
    assert max(during, default=0) >= 1  # workers died with reversals under way
    assert reversing == len(approved)
    assert report == {
        "manual_voucher": len(approved),
        "draft_deleted": expenses - len(approved),
        "ledger_item": ledger,
    }
