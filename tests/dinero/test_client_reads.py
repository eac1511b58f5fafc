"""Reads: what Dinero receives (path, version, query, Bearer) and how its answers are parsed."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from uuid import UUID

import httpx
import pytest
import respx

from app.dinero import (
    DineroClient,
    DineroNotPro,
    change_windows,
)
from app.dinero.collections import COLUMNS, Collection
from app.dinero.fields import (
    CONTACT_FIELDS,
    DEPOSIT_ACCOUNT_FIELDS,
    ENTRY_ACCOUNT_FIELDS,
    INVOICE_FIELDS,
    ORGANIZATION_FIELDS,
    PRODUCT_FIELDS,
    SALES_FIELDS,
    TRADE_OFFER_FIELDS,
)
from tests.dinero.conftest import ORG, ContractLog, RecordingPacer
from tests.dinero.examples import example, page


def _query(route: respx.Route) -> dict[str, str]:
    return dict(route.calls.last.request.url.params)


async def test_list_organizations_v1(
    client: DineroClient, dinero: respx.MockRouter, pacer: RecordingPacer, contract_log: ContractLog
) -> None:
    orgs = [
        example("OrganizationReadModel", fields=ORGANIZATION_FIELDS, Id=ORG, Name="Sandbox ApS"),
        example(
            "OrganizationReadModel", fields=ORGANIZATION_FIELDS, Id=100002, IsPro=False, Name="B"
        ),
    ]
    route = dinero.get("/v1/organizations").respond(200, json=orgs)

    result = await client.list_organizations()

    request = route.calls.last.request
    assert request.headers["authorization"] == "Bearer access-token-1"
    assert _query(route) == {"fields": ORGANIZATION_FIELDS}
    assert [(o.id, o.name, o.is_pro) for o in result] == [
        (ORG, "Sandbox ApS", True),
        (100002, "B", False),
    ]
    assert result[0].email == "my@company-email.dk"
    assert pacer.acquired == []  # not org-scoped: not paced
    assert contract_log.responses == ["200 GET /v1/organizations"]


async def test_list_organizations_v1_1_reads_subscription(
    client: DineroClient, dinero: respx.MockRouter
) -> None:
    pro = example("OrganizationReadModelV2", Id=ORG)
    pro["Subscription"] = example("SubscriptionReadModel", HasPro=True, HasPayingPro=True)
    free = example("OrganizationReadModelV2", Id=5)
    dinero.get("/v1.1/organizations").respond(200, json=[pro, free])

    result = await client.list_organizations(version="v1.1")

    assert [(o.id, o.is_pro, o.is_paying_pro) for o in result] == [
        (ORG, True, True),
        (5, False, False),
    ]
    assert result[0].subscription is not None
    assert result[0].subscription.has_pro


async def test_accounting_years(
    client: DineroClient, dinero: respx.MockRouter, pacer: RecordingPacer
) -> None:
    dinero.get(f"/v1/{ORG}/accountingyears").respond(
        200,
        json=[
            example("AccountingYearReadModel"),
            example(
                "AccountingYearReadModel",
                Name="2023",
                FromDate="2023-01-01",
                ToDate="2023-12-31",
                SalarySumTaxStateEnum="OnlySalarySum",
            ),
        ],
    )
    years = await client.accounting_years()
    assert [(y.name, y.from_date, y.to_date) for y in years] == [
        ("2022", date(2022, 1, 1), date(2022, 12, 31)),
        ("2023", date(2023, 1, 1), date(2023, 12, 31)),
    ]
    assert years[1].salary_sum_tax_state == "OnlySalarySum"
    assert years[0].contains(date(2022, 6, 30))
    assert not years[0].contains(date(2023, 1, 1))
    assert pacer.acquired == [ORG]


async def test_entry_accounts_and_category_filter(
    client: DineroClient, dinero: respx.MockRouter
) -> None:
    route = dinero.get(f"/v1/{ORG}/accounts/entry").respond(
        200,
        json=[
            example(
                "EntryAccountReadModel",
                fields=ENTRY_ACCOUNT_FIELDS,
                AccountNumber=2020,
                Category="Variable Expenses",
                CategoryName="Variable omkostninger",
            )
        ],
    )
    accounts = await client.entry_accounts()
    assert _query(route) == {"fields": ENTRY_ACCOUNT_FIELDS}
    account = accounts[0]
    assert (account.account_number, account.name, account.vat_code) == (
        2020,
        "Purchase of specific goods",
        "I25",
    )
    assert account.category_name == "Variable omkostninger"
    assert account.is_hidden is False

    await client.entry_accounts(category="Liquid Assets")
    assert _query(route) == {"fields": ENTRY_ACCOUNT_FIELDS, "categoryFilter": "Liquid Assets"}


async def test_purchase_accounts(client: DineroClient, dinero: respx.MockRouter) -> None:
    route = dinero.get(f"/v1/{ORG}/accounts/purchase").respond(
        200,
        json=[
            example("EntryAccountReadModel", fields=ENTRY_ACCOUNT_FIELDS, AccountNumber=n)
            for n in (2000, 7300)
        ],
    )
    accounts = await client.purchase_accounts()
    assert [a.account_number for a in accounts] == [2000, 7300]
    assert _query(route) == {"fields": ENTRY_ACCOUNT_FIELDS}


async def test_deposit_accounts(client: DineroClient, dinero: respx.MockRouter) -> None:
    route = dinero.get(f"/v1/{ORG}/accounts/deposit").respond(
        200,
        json=[
            example("DepositAccountReadModel", fields=DEPOSIT_ACCOUNT_FIELDS),
            example(
                "DepositAccountReadModel",
                fields=DEPOSIT_ACCOUNT_FIELDS,
                AccountNumber=55010,
                Name="Firmakort",
                IsDefault=False,
                IsHidden=True,
            ),
        ],
    )
    accounts = await client.deposit_accounts()
    assert _query(route) == {"fields": DEPOSIT_ACCOUNT_FIELDS}
    assert [(a.account_number, a.name, a.is_default, a.is_hidden) for a in accounts] == [
        (55100, "My New Bankaccount", True, False),
        (55010, "Firmakort", False, True),
    ]
    assert accounts[0].bank_registration_number == "1234"


async def test_vat_types(client: DineroClient, dinero: respx.MockRouter) -> None:
    dinero.get(f"/v1/{ORG}/vatTypes").respond(
        200,
        json=[
            example("VatTypeReadModel"),
            example("VatTypeReadModel", VatCode="REP", Name="Repræsentation", VatRate=0.0625),
            example("VatTypeReadModel", VatCode="none", Name="Ingen moms", VatRate=0),
        ],
    )
    types = await client.vat_types()
    assert [(t.vat_code, t.vat_rate) for t in types] == [
        ("I25", Decimal("0.25")),
        ("REP", Decimal("0.0625")),
        ("none", Decimal("0")),
    ]
    assert all(isinstance(t.vat_rate, Decimal) for t in types)


async def test_list_files(client: DineroClient, dinero: respx.MockRouter) -> None:
    archived = example("FilteredFileReadModel", UploadedAt="2024-03-01T10:00:00Z")
    archived["Linked"] = [example("FileLinkReadModel")]
    route = dinero.get(f"/v1/{ORG}/files").respond(200, json=[archived])

    files = await client.list_files(
        extensions=["pdf", "png"],
        uploaded_after=date(2024, 1, 1),
        uploaded_before=date(2024, 3, 31),
        file_status="Unused",
    )
    assert _query(route) == {
        "fileStatus": "Unused",
        "page": "0",
        "pageSize": "1000",
        "extensions": "pdf,png",
        "uploadedAfter": "2024/01/01",
        "uploadedBefore": "2024/03/31",
    }
    assert files[0].name == "receipt.pdf"
    assert files[0].size == 20480
    assert files[0].linked[0].voucher_guid == UUID("74ba828f-0b4b-49e1-b5c9-ef9675755556")


async def test_entries_for_a_period(client: DineroClient, dinero: respx.MockRouter) -> None:
    route = dinero.get(f"/v1/{ORG}/entries").respond(
        200,
        json=[
            example("EntryReadModel"),
            example(
                "EntryReadModel",
                AccountNumber=55000,
                Amount=-1000.5,
                Type="Primo",
                VoucherGuid=None,
            ),
        ],
    )
    entries = await client.entries(date(2022, 1, 1), date(2022, 12, 31))
    assert _query(route) == {
        "fromDate": "2022-01-01",
        "toDate": "2022-12-31",
        "includePrimo": "true",
    }
    assert entries[0].account_number == 7300
    assert entries[0].amount == Decimal("1000")
    assert entries[0].voucher_type == "Purchases"
    assert entries[0].date == date(2022, 5, 16)
    assert entries[0].voucher_guid == UUID("b9e5b9b0-1d6e-4d7e-9c0a-8b7f6c5d4e3a")
    assert entries[1].amount == Decimal("-1000.5")
    assert entries[1].type == "Primo"

    await client.entries(date(2022, 1, 1), date(2022, 1, 31), include_primo=False)
    assert _query(route)["includePrimo"] == "false"
    with pytest.raises(ValueError, match="before"):
        await client.entries(date(2022, 2, 1), date(2022, 1, 1))


async def test_entry_changes_split_into_31_day_windows(
    client: DineroClient, dinero: respx.MockRouter
) -> None:
    guid = "d29f89bf-4148-4573-a24e-4578266a572d"
    first = example("EntryReadModel", EntryGuid=guid, Amount=100)
    updated = example("EntryReadModel", EntryGuid=guid, Amount=150)
    other = example("EntryReadModel", EntryGuid="9c7e0f42-5f0c-4f43-8a49-6a3e1f2c9b11")
    route = dinero.get(f"/v1/{ORG}/entries/changes")
    route.side_effect = [
        httpx.Response(200, json=[first]),
        httpx.Response(200, json=[updated, other]),
        httpx.Response(200, json=[]),
    ]
    start = datetime(2024, 1, 1, tzinfo=UTC)
    end = start + timedelta(days=70)

    entries = await client.entry_changes(start, end)

    windows = [
        (dict(call.request.url.params)["changesFrom"], dict(call.request.url.params)["changesTo"])
        for call in route.calls
    ]
    assert windows == [
        ("2024-01-01T00:00:00Z", "2024-02-01T00:00:00Z"),
        ("2024-02-01T00:00:00Z", "2024-03-03T00:00:00Z"),
        ("2024-03-03T00:00:00Z", "2024-03-11T00:00:00Z"),
    ]
    assert [(str(e.entry_guid), e.amount) for e in entries] == [
        (guid, Decimal("150")),
        ("9c7e0f42-5f0c-4f43-8a49-6a3e1f2c9b11", Decimal("1000")),
    ]


async def test_short_change_window_is_one_call(
    client: DineroClient, dinero: respx.MockRouter
) -> None:
    route = dinero.get(f"/v1/{ORG}/entries/changes").respond(200, json=[])
    start = datetime(2024, 1, 1, 6, 30, tzinfo=UTC)
    assert await client.entry_changes(start, start + timedelta(days=31)) == []
    assert route.call_count == 1
    with pytest.raises(ValueError, match="timezone-aware"):
        await client.entry_changes(datetime(2024, 1, 1), datetime(2024, 1, 2))


async def test_a_record_page_asks_for_its_page_changes_and_deletions(
    client: DineroClient, dinero: respx.MockRouter
) -> None:
    record = example(
        "ContactReadModel",
        fields=CONTACT_FIELDS,
        CreatedAt="2024-01-02T03:04:05Z",
        UpdatedAt="2024-01-03T03:04:05Z",
        DeletedAt=None,
    )
    route = dinero.get(f"/v1/{ORG}/contacts").respond(
        200, json=page([record], page=2, page_size=50, total=101)
    )

    result = await client.record_page(
        Collection.CONTACTS,
        page=2,
        page_size=50,
        changes_since=datetime(2015, 8, 18, 6, 36, 22, tzinfo=UTC),
        deleted_only=True,
    )

    assert _query(route) == {
        "fields": CONTACT_FIELDS,
        "page": "2",
        "pageSize": "50",
        "changesSince": "2015-08-18T06:36:22Z",
        "deletedOnly": "true",
    }
    [contact] = result.records
    assert contact.key == "74ba828f-0b4b-49e1-b5c9-ef9675755556"
    assert contact.data["Name"] == "John Doe"
    assert contact.created_at == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert result.last is True


@pytest.mark.parametrize("page_size", [0, 1001])
async def test_page_size_is_checked_locally(client: DineroClient, page_size: int) -> None:
    with pytest.raises(ValueError, match="page_size"):
        await client.record_page(Collection.CONTACTS, page_size=page_size)


@pytest.mark.parametrize(
    ("collection", "path", "fields"),
    [
        (Collection.CONTACTS, "contacts", CONTACT_FIELDS),
        (Collection.INVOICES, "invoices", INVOICE_FIELDS),
        (Collection.SALES, "sales", SALES_FIELDS),
        (Collection.PRODUCTS, "products", PRODUCT_FIELDS),
        (Collection.TRADE_OFFERS, "tradeoffers", TRADE_OFFER_FIELDS),
    ],
)
async def test_each_paged_collection_is_read_from_its_path_with_its_fields(
    client: DineroClient,
    dinero: respx.MockRouter,
    collection: Collection,
    path: str,
    fields: str,
) -> None:
    route = dinero.get(f"/v1/{ORG}/{path}").respond(200, json=page([], total=0))
    result = await client.record_page(collection)
    assert _query(route) == {"fields": fields, "page": "0", "pageSize": "100"}
    assert (result.records, result.last) == ([], True)


async def test_a_page_is_the_last_when_no_further_page_can_hold_records(
    client: DineroClient, dinero: respx.MockRouter
) -> None:
    def contact(n: int) -> dict[str, object]:
        return example(
            "ContactReadModel",
            fields=CONTACT_FIELDS,
            ContactGuid=f"00000000-0000-4000-8000-{n:012d}",
            Name=f"Contact {n}",
            CreatedAt="2024-01-02T03:04:05Z",
            UpdatedAt="2024-01-02T03:04:05Z",
            DeletedAt=None,
        )

    route = dinero.get(f"/v1/{ORG}/contacts")
    route.side_effect = [
        httpx.Response(200, json=page([contact(1), contact(2)], page=0, page_size=2, total=5)),
        httpx.Response(200, json=page([contact(5)], page=2, page_size=2, total=5)),
        httpx.Response(200, json=page([contact(3), contact(4)], page=1, page_size=2, total=4)),
    ]
    full = await client.record_page(Collection.CONTACTS, page=0, page_size=2)
    short = await client.record_page(Collection.CONTACTS, page=2, page_size=2)
    exactly_full = await client.record_page(Collection.CONTACTS, page=1, page_size=2)

    assert [r.data["Name"] for r in full.records] == ["Contact 1", "Contact 2"]
    assert (full.last, short.last, exactly_full.last) == (False, True, True)


async def test_pro_missing_is_reported_plainly(
    client: DineroClient, dinero: respx.MockRouter
) -> None:
    dinero.get(f"/v1/{ORG}/vatTypes").respond(
        403, json={"code": 90, "message": "Organisationen har ikke et aktivt Pro-abonnement"}
    )
    with pytest.raises(DineroNotPro) as caught:
        await client.vat_types()
    assert caught.value.dinero_message == "Organisationen har ikke et aktivt Pro-abonnement"
    assert caught.value.status == 403
    assert caught.value.code == 90


def test_change_windows_edges() -> None:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    assert change_windows(start, start) == [(start, start)]
    assert change_windows(start, start + timedelta(days=31)) == [
        (start, start + timedelta(days=31))
    ]
    assert len(change_windows(start, start + timedelta(days=31, seconds=1))) == 2
    with pytest.raises(ValueError, match="before"):
        change_windows(start, start - timedelta(seconds=1))


async def test_record_pages_are_typed_records_with_the_documents_verbatim(
    client: DineroClient, dinero: respx.MockRouter
) -> None:
    invoice = example(
        "SalesVoucherReadListModel",
        fields=INVOICE_FIELDS,
        Guid="0713954E-F3B0-4FB0-8B95-0DC0772D5EA0",
        Date="2026-03-02",
        PaymentDate="2026-03-16",
        CreatedAt="2026-03-02T10:00:00Z",
        UpdatedAt="2026-03-03T12:30:00+01:00",
        DeletedAt="2026-03-04T08:00:00Z",
        TotalInclVat=1250.25,
    )
    route = dinero.get(f"/v1/{ORG}/invoices").respond(200, json=page([invoice], total=1))

    result = await client.record_page(
        Collection.INVOICES, page=0, page_size=100, changes_since=datetime(2026, 3, 1, tzinfo=UTC)
    )

    assert result.last is True
    [record] = result.records
    assert record.key == "0713954e-f3b0-4fb0-8b95-0dc0772d5ea0"
    assert (record.date, record.payment_date) == (date(2026, 3, 2), date(2026, 3, 16))
    assert record.created_at == datetime(2026, 3, 2, 10, tzinfo=UTC)
    assert record.updated_at == datetime(2026, 3, 3, 11, 30, tzinfo=UTC)
    assert record.deleted_at == datetime(2026, 3, 4, 8, tzinfo=UTC)
    assert record.data["TotalInclVat"] == Decimal("1250.25")
    assert record.data["Guid"] == "0713954E-F3B0-4FB0-8B95-0DC0772D5EA0"  # as sent
    assert _query(route)["changesSince"].startswith("2026-03-01")
    assert _query(route)["fields"].split(",") == list(COLUMNS[Collection.INVOICES])

    with pytest.raises(ValueError, match="not a paged collection"):
        await client.record_page(Collection.ENTRIES)
