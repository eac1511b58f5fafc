"""Retries only where safe, typed uncertainty for writes, 401 refresh, 429 penalty, pacing."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date, timedelta
from decimal import Decimal
from uuid import UUID

import httpx
import pytest
import respx

from app.backoff import Backoff
from app.dinero import (
    DineroClient,
    DineroOutcomeUnknown,
    DineroRateLimited,
    DineroResponseError,
    DineroServerError,
    DineroTransportError,
    DineroUnauthorized,
    LedgerItemRef,
    PurchaseVoucherCreate,
    PurchaseVoucherLine,
)
from tests.contract import NO_BODY, ContractError, validate_response
from tests.dinero.conftest import (
    ORG,
    ContractLog,
    FakeSleep,
    RecordingPacer,
    RotatingTokens,
    static_client,
)
from tests.dinero.examples import example

VAT_TYPES = [example("VatTypeReadModel")]


def _voucher() -> PurchaseVoucherCreate:
    return PurchaseVoucherCreate(
        purchase_type="cash",
        voucher_date=date(2026, 11, 3),
        deposit_account_number=55000,
        lines=[PurchaseVoucherLine(amount=Decimal("245.00"), account_number=7300)],
    )


async def test_get_is_retried_on_503_then_succeeds(
    client: DineroClient,
    dinero: respx.MockRouter,
    pacer: RecordingPacer,
    sleeps: FakeSleep,
    contract_log: ContractLog,
) -> None:
    route = dinero.get(f"/v1/{ORG}/vatTypes")
    route.side_effect = [
        httpx.Response(503, json={"code": 0, "message": "Service Unavailable"}),
        httpx.Response(200, json=VAT_TYPES),
    ]
    types = await client.vat_types()
    assert types[0].vat_code == "I25"
    assert route.call_count == 2
    assert sleeps.delays == [pytest.approx(0.5 * (1 - 0.25 * 0.5))]
    assert pacer.acquired == [ORG, ORG]  # every attempt is paced
    assert contract_log.responses == [f"503 GET /v1/{ORG}/vatTypes", f"200 GET /v1/{ORG}/vatTypes"]


async def test_reads_give_up_after_three_attempts_with_growing_delays(
    client: DineroClient, dinero: respx.MockRouter, sleeps: FakeSleep
) -> None:
    route = dinero.get(f"/v1/{ORG}/accountingyears").respond(
        500, json={"code": 0, "message": "Internal error"}
    )
    with pytest.raises(DineroServerError) as caught:
        await client.accounting_years()
    assert route.call_count == 3
    assert sleeps.delays == [pytest.approx(0.4375), pytest.approx(0.875)]
    assert caught.value.dinero_message == "Internal error"


async def test_backoff_is_capped_and_jittered() -> None:
    steady = Backoff(first=timedelta(seconds=1), cap=timedelta(seconds=5))
    assert [steady.seconds(n) for n in range(1, 6)] == [1.0, 2.0, 4.0, 5.0, 5.0]
    jittered = Backoff(first=timedelta(seconds=1), cap=timedelta(seconds=5), spread=(0.75, 1.0))
    assert jittered.seconds(3, fraction=0.0) == 3.0
    assert jittered.seconds(3, fraction=0.999) == pytest.approx(4.0, rel=1e-3)
    assert jittered.delay(9, fraction=0.5) == timedelta(seconds=5 * 0.875)


async def test_read_timeouts_and_dropped_connections_are_retried_for_reads(
    client: DineroClient, dinero: respx.MockRouter
) -> None:
    route = dinero.get(f"/v1/{ORG}/vatTypes")
    route.side_effect = [
        httpx.ReadTimeout("slow"),
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
        httpx.Response(200, json=VAT_TYPES),
    ]
    assert len(await client.vat_types()) == 1
    assert route.call_count == 3


async def test_unreachable_dinero_after_retries(
    client: DineroClient, dinero: respx.MockRouter
) -> None:
    dinero.get(f"/v1/{ORG}/vatTypes").mock(side_effect=httpx.ConnectError("refused"))
    with pytest.raises(DineroTransportError) as caught:
        await client.vat_types()
    assert caught.value.sent is False
    assert caught.value.transient


async def test_read_like_posts_are_retried(client: DineroClient, dinero: respx.MockRouter) -> None:
    status = dinero.post(f"/v1/{ORG}/ledgeritems/status")
    status.side_effect = [
        httpx.Response(502, json={"code": 0, "message": "Bad gateway"}),
        httpx.ReadTimeout("slow"),
        httpx.Response(200, json=[example("LedgerItemStatusReadModel", VoucherNumber=3)]),
    ]

    assert (await client.ledger_item_status([UUID(int=1)]))[0].voucher_number == 3
    assert status.call_count == 3


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ReadTimeout("timed out waiting for the answer"),
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
        httpx.ReadError("connection reset by peer"),
        httpx.WriteTimeout("timed out sending"),
    ],
)
async def test_create_is_never_retried_and_reports_an_unknown_outcome(
    client: DineroClient, dinero: respx.MockRouter, sleeps: FakeSleep, failure: Exception
) -> None:
    route = dinero.post(f"/v1.2/{ORG}/vouchers/purchase").mock(side_effect=failure)
    with pytest.raises(DineroOutcomeUnknown) as caught:
        await client.create_purchase_voucher(_voucher())
    assert route.call_count == 1
    assert sleeps.delays == []
    assert caught.value.method == "POST"
    assert caught.value.path == f"/v1.2/{ORG}/vouchers/purchase"
    assert "check Dinero" in str(caught.value)


async def test_a_5xx_after_a_write_is_an_unknown_outcome(
    client: DineroClient, dinero: respx.MockRouter
) -> None:
    route = dinero.post(f"/v1/{ORG}/vouchers/manuel/{UUID(int=1)}/book").respond(
        500, json={"code": 0, "message": "Object reference not set to an instance of an object."}
    )
    with pytest.raises(DineroOutcomeUnknown) as caught:
        await client.book_manual_voucher(UUID(int=1), "00000000020A5EA8")
    assert route.call_count == 1
    assert caught.value.status == 500
    assert caught.value.dinero_message == "Object reference not set to an instance of an object."
    assert isinstance(caught.value.__cause__, DineroServerError)


async def test_a_write_that_never_left_is_a_plain_transport_error(
    client: DineroClient, dinero: respx.MockRouter
) -> None:
    route = dinero.post(f"/v1/{ORG}/files").mock(side_effect=httpx.ConnectError("refused"))
    with pytest.raises(DineroTransportError) as caught:
        await client.upload_file(b"receipt", "r.pdf", "application/pdf")
    assert caught.value.sent is False
    assert not isinstance(caught.value, DineroOutcomeUnknown)
    assert route.call_count == 1


def _writes(client: DineroClient) -> dict[str, Callable[[], Awaitable[object]]]:
    from tests.dinero.test_client_writes import _ledger_item

    ref = LedgerItemRef(id=UUID(int=1), version="v")
    return {
        "upload": lambda: client.upload_file(b"receipt", "r.pdf", "application/pdf"),
        "ledger_create": lambda: client.create_ledger_items([_ledger_item(1)]),
        "ledger_book": lambda: client.book_ledger_items([ref]),
        "ledger_delete": lambda: client.delete_ledger_items([ref]),
        "voucher_delete": lambda: client.delete_purchase_voucher(UUID(int=1), "00000000020A5EA8"),
    }


@pytest.mark.parametrize(
    ("method", "path", "call"),
    [
        ("POST", f"/v1/{ORG}/files", "upload"),
        ("POST", f"/v1.2/{ORG}/ledgeritems", "ledger_create"),
        ("POST", f"/v1/{ORG}/ledgeritems/book", "ledger_book"),
        ("DELETE", f"/v1/{ORG}/ledgeritems/delete", "ledger_delete"),
        ("DELETE", f"/v1/{ORG}/vouchers/purchase/{UUID(int=1)}", "voucher_delete"),
    ],
)
async def test_no_write_is_retried(
    client: DineroClient, dinero: respx.MockRouter, method: str, path: str, call: str
) -> None:
    route = dinero.route(method=method, path=path).mock(side_effect=httpx.ReadTimeout("slow"))
    write = _writes(client)[call]
    with pytest.raises(DineroOutcomeUnknown):
        await write()
    assert route.call_count == 1


async def test_unreadable_answer_to_a_write_is_an_unknown_outcome(
    dinero: respx.MockRouter, pacer: RecordingPacer
) -> None:
    # Deliberately off-contract (the contract check rejects it), so sent without the hooks:
    # Dinero said 200 (the voucher exists) but the body cannot be read: look before creating again.
    path = f"/v1.2/{ORG}/vouchers/purchase"
    with pytest.raises(ContractError):
        validate_response("POST", path, 200, NO_BODY)
    dinero.post(path).respond(
        200, content=b"<html>oops</html>", headers={"content-type": "text/html"}
    )
    async with httpx.AsyncClient() as http:
        with pytest.raises(DineroOutcomeUnknown, match="unreadable"):
            await static_client(http, pacer).create_purchase_voucher(_voucher())
        dinero.post(path).respond(200, json={"Guid": "not-a-guid"})
        with pytest.raises(DineroOutcomeUnknown, match="unreadable"):
            await static_client(http, pacer).create_purchase_voucher(_voucher())


async def test_unreadable_answer_to_a_read_is_a_response_error(
    dinero: respx.MockRouter, pacer: RecordingPacer
) -> None:
    # Deliberately off-contract, so sent without the hooks.
    path = f"/v1/{ORG}/vouchers/purchase/fileguid/abc"
    with pytest.raises(ContractError):
        validate_response("GET", path, 200, [{"Guid": 1}])
    dinero.get(path).respond(200, content=b"not json", headers={"content-type": "text/plain"})
    async with httpx.AsyncClient() as http:
        client = static_client(http, pacer)
        with pytest.raises(DineroResponseError):
            await client.purchase_vouchers_by_file("abc")
        dinero.get(path).respond(200, json=[{"Guid": 1}])
        with pytest.raises(DineroResponseError, match="expected shape"):
            await client.purchase_vouchers_by_file("abc")


async def test_429_is_not_retried_and_pauses_the_organization(
    client: DineroClient, dinero: respx.MockRouter, pacer: RecordingPacer, sleeps: FakeSleep
) -> None:
    route = dinero.get(f"/v1/{ORG}/vatTypes").respond(
        429, text="API calls quota exceeded! maximum admitted 100 per 1m."
    )
    with pytest.raises(DineroRateLimited) as caught:
        await client.vat_types()
    assert route.call_count == 1
    assert sleeps.delays == []
    assert pacer.penalties == [(ORG, 60.0)]
    assert caught.value.dinero_message == "API calls quota exceeded! maximum admitted 100 per 1m."
    assert caught.value.retry_after_seconds >= 60


async def test_429_on_a_write_is_rate_limited_not_unknown(
    client: DineroClient, dinero: respx.MockRouter, pacer: RecordingPacer
) -> None:
    dinero.post(f"/v1.2/{ORG}/vouchers/purchase").respond(
        429, json={"code": 43, "message": "Limit exceeded"}
    )
    with pytest.raises(DineroRateLimited):
        await client.create_purchase_voucher(_voucher())
    assert pacer.penalties == [(ORG, 60.0)]


async def test_401_forces_one_token_refresh_then_succeeds(
    client: DineroClient, dinero: respx.MockRouter, tokens: RotatingTokens
) -> None:
    route = dinero.post(f"/v1.2/{ORG}/vouchers/purchase")
    route.side_effect = [
        httpx.Response(401, json={"code": 41, "message": "Token expired"}),
        httpx.Response(200, json=example("PurchaseVoucherReadModelV2", Lines=[], VoucherTotals=[])),
    ]
    voucher = await client.create_purchase_voucher(_voucher())
    assert voucher.timestamp == "00000000020A5EA8"
    assert tokens.forced == 1
    auth = [call.request.headers["authorization"] for call in route.calls]
    assert auth == ["Bearer access-token-1", "Bearer access-token-2"]
    assert route.calls[0].request.content == route.calls[1].request.content


async def test_a_second_401_is_unauthorized(
    client: DineroClient, dinero: respx.MockRouter, tokens: RotatingTokens
) -> None:
    route = dinero.get(f"/v1/{ORG}/vatTypes").respond(
        401, json={"code": 41, "message": "Unauthorized"}
    )
    with pytest.raises(DineroUnauthorized) as caught:
        await client.vat_types()
    assert route.call_count == 2
    assert tokens.forced == 1
    assert caught.value.dinero_message == "Unauthorized"


async def test_401_refresh_also_works_for_uploads(
    client: DineroClient, dinero: respx.MockRouter
) -> None:
    route = dinero.post(f"/v1/{ORG}/files")
    route.side_effect = [
        httpx.Response(401, json={"code": 41, "message": "Token expired"}),
        httpx.Response(200, json=example("FileSavedReadModel")),
    ]
    uploaded = await client.upload_file(b"receipt-bytes", "r.pdf", "application/pdf")
    assert uploaded.file_guid == "web0crmck5v0ndcx3313g6zn61tc7wgc"
    assert b"receipt-bytes" in route.calls[1].request.content


async def test_organizations_are_not_paced_and_429_there_penalizes_nobody(
    client: DineroClient, dinero: respx.MockRouter, pacer: RecordingPacer
) -> None:
    dinero.get("/v1.1/organizations").respond(429, text="API calls quota exceeded!")
    with pytest.raises(DineroRateLimited):
        await client.list_organizations(version="v1.1")
    assert pacer.acquired == []
    assert pacer.penalties == []
