"""Demo data other teams rely on (fixed names) and realistic records for the paged lists.

- OAuth client `isv_sandbox` / `sandbox-secret`.
- Organization 100001 "Sandbox ApS" (Pro), 100002 "Nordlys Tømrer ApS" (no Pro).
- Login `demo@sandbox.dinero.dk` reaching both (the default on the consent page).
- API key `sandbox-api-key-100001` for 100001.
- In 100001: contacts, products, invoices, credit notes and trade offers, plus booked history
  (share capital in 2024, a few paid purchases in 2025, the booked invoices' entries in 2026).
  Nothing is booked through the voucher sequence in 2026, so a test's first voucher in 2026
  gets number 1.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from dinero_sandbox.bookkeeping import Posting, Writer, round2, write_entries
from dinero_sandbox.chart import DEBTORS_ACCOUNT, DEFAULT_BANK_ACCOUNT, SALES_VAT_ACCOUNT
from dinero_sandbox.state import OrgBooks, Record, RecordKind
from dinero_sandbox.vouchers import book_purchase_voucher, create_purchase_voucher
from dinero_sandbox.wire import PurchaseVoucherCreateModelV2, PurchaseVoucherLineCreateModel

if TYPE_CHECKING:
    from dinero_sandbox.sandbox import Sandbox

CLIENT_ID = "isv_sandbox"
CLIENT_SECRET = "sandbox-secret"  # noqa: S105 - the documented demo secret
PRO_ORGANIZATION = 100001
PLAIN_ORGANIZATION = 100002
DEMO_LOGIN = "demo@sandbox.dinero.dk"
API_KEY = "sandbox-api-key-100001"

NAMESPACE = uuid.UUID("0b8f6a52-6a4e-4f0c-9e51-3d2a1c7f9b10")


def stable_guid(*parts: object) -> str:
    """A GUID derived from names (seed data keeps its GUIDs across runs)."""
    return str(uuid.uuid5(NAMESPACE, ":".join(str(p) for p in parts)))


def _at(day: date, hour: int = 10) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def populate(sandbox: Sandbox) -> None:
    """Fill an empty sandbox with the demo state."""
    sandbox.add_client(CLIENT_ID, CLIENT_SECRET, name="Sandbox integration")
    pro = sandbox.add_organization(
        PRO_ORGANIZATION,
        "Sandbox ApS",
        pro=True,
        years=(2024, 2025, 2026),
        email="bogholderi@sandbox-aps.dk",
        phone="+45 70 20 30 40",
        street="Vesterbrogade 12, 2. sal",
        city="København V",
        zip_code="1620",
        att_person="Mette Sørensen",
        vat_number="DK38991234",
        website="https://sandbox-aps.dk",
    )
    sandbox.add_organization(
        PLAIN_ORGANIZATION,
        "Nordlys Tømrer ApS",
        pro=False,
        years=(2025, 2026),
        email="kontor@nordlys-toemrer.dk",
        phone="+45 86 12 34 56",
        street="Industrivej 7",
        city="Silkeborg",
        zip_code="8600",
        att_person="Jens Nordlys",
        vat_number="DK41234567",
    )
    sandbox.add_login(
        DEMO_LOGIN,
        name="Demo Bruger",
        organizations=[PRO_ORGANIZATION, PLAIN_ORGANIZATION],
        default=True,
    )
    sandbox.add_api_key(API_KEY, PRO_ORGANIZATION)
    _records(pro)
    _history(sandbox, pro)


# --------------------------------------------------------------------------------------------
# Records

_CONTACTS: tuple[tuple[str, bool, str, str, str, bool, bool], ...] = (
    # name, person, street, zip, city, debitor, creditor
    ("Aarhus Kaffebrenderi ApS", False, "Mejlgade 41", "8000", "Aarhus C", True, False),
    ("Bager Jensen I/S", False, "Torvet 3", "7100", "Vejle", True, False),
    ("Birgitte Holm", True, "Rosenvængets Allé 18", "2100", "København Ø", True, False),
    ("Cykelsmeden Odense", False, "Vestergade 88", "5000", "Odense C", True, False),
    ("Danske Revision Syd", False, "Jernbanegade 9", "6000", "Kolding", False, True),
    ("Elgiganten A/S", False, "Arne Jacobsens Allé 16", "2300", "København S", False, True),
    ("Fjordbyens Tandklinik", False, "Havnegade 2", "9000", "Aalborg", True, False),
    ("Frederik Lund", True, "Skovvej 14", "3400", "Hillerød", True, False),
    ("Grøn Energi Rådgivning ApS", False, "Banegårdspladsen 1", "8800", "Viborg", True, False),
    ("Hansen & Søn VVS", False, "Møllevej 22", "4000", "Roskilde", True, False),
    ("IKEA A/S", False, "Ringvejen 2", "2630", "Taastrup", False, True),
    ("Jysk Tagdækning ApS", False, "Industrivej 45", "7400", "Herning", True, False),
    ("Karen Østergaard", True, "Strandvejen 201", "2900", "Hellerup", True, False),
    ("Lyreco Danmark A/S", False, "Havneholmen 25", "1561", "København V", False, True),
    ("Mads Kristensen Consulting", False, "Nørregade 7", "1165", "København K", True, False),
    ("Nordisk Film Biografer", False, "Axeltorv 3", "1609", "København V", True, False),
    ("Odsherred Gårdbutik", False, "Landevejen 112", "4500", "Nykøbing Sj", True, False),
    ("Pernille Bach Design", False, "Jægergårdsgade 60", "8000", "Aarhus C", True, True),
    ("Q8 Danmark A/S", False, "Arne Jacobsens Allé 7", "2300", "København S", False, True),
    ("Rasmussen Transport ApS", False, "Transportvej 4", "6200", "Aabenraa", True, True),
    ("Skagen Fiskerestaurant", False, "Fiskehuset 13", "9990", "Skagen", True, False),
    ("Telia Danmark", False, "Holmbladsgade 139", "2300", "København S", False, True),
    ("Ulla Mikkelsen", True, "Parkvej 5", "5700", "Svendborg", True, False),
    ("Vestjysk Bank", False, "Torvet 4", "7620", "Lemvig", False, True),
    ("Wulff Arkitekter", False, "Overgaden Neden Vandet 11", "1414", "København K", True, False),
    ("Zealand Event ApS", False, "Køgevej 55", "4100", "Ringsted", True, False),
    ("Ørsted Salg & Service A/S", False, "Kraftværksvej 53", "7000", "Fredericia", False, True),
    ("Ærø Bryghus", False, "Vestergade 114", "5970", "Ærøskøbing", True, False),
    ("Åbybro Maskinstation", False, "Gl. Landevej 30", "9440", "Aabybro", True, False),
    ("Snedker Poulsen", True, "Bakkevej 3", "8600", "Silkeborg", True, False),
)

_PRODUCTS: tuple[tuple[str, str, str, str], ...] = (
    # number, name, unit, price excl. VAT
    ("K-100", "Konsulenttime", "hours", "950.00"),
    ("K-110", "Seniorkonsulent, time", "hours", "1250.00"),
    ("K-200", "Workshop, halv dag", "session", "6500.00"),
    ("K-210", "Workshop, hel dag", "session", "11500.00"),
    ("S-100", "Supportaftale, måned", "month", "1495.00"),
    ("S-110", "Hostingpakke, måned", "month", "349.00"),
    ("L-100", "Softwarelicens, år", "parts", "4800.00"),
    ("V-100", "Kaffebønner, 1 kg", "kilogram", "189.00"),
    ("V-110", "Kaffemaskine Pro", "parts", "7995.00"),
    ("V-120", "Filterpapir, kasse", "box", "65.00"),
    ("T-100", "Kørsel", "km", "3.79"),
    ("T-110", "Fragt, pakke", "shipment", "79.00"),
)


def _money(text: str) -> Decimal:
    return Decimal(text)


def new_record(
    books: OrgBooks, kind: RecordKind, guid: str, values: dict[str, Any], now: datetime
) -> Record:
    """A record of `kind` with realistic defaults for what `values` leaves out."""
    number = len(books.records[kind]) + 1
    if kind == "contacts":
        data = _contact_defaults(guid, values.get("Name") or f"Kunde {number}")
    elif kind == "products":
        data = _product_defaults(guid, number, Decimal(str(values.get("BaseAmountValue", "100"))))
    elif kind in ("invoices", "creditnotes"):
        data = _sale_defaults(books, guid, number, kind, now.date())
    else:
        data = _trade_offer_defaults(books, guid, number, now.date())
    data.update(values)
    return Record(guid=guid, data=data, created_at=now, updated_at=now)


def _contact_defaults(guid: str, name: str) -> dict[str, Any]:
    return {
        "ContactGuid": guid,
        "ExternalReference": None,
        "Name": name,
        "Street": None,
        "ZipCode": None,
        "City": None,
        "CountryKey": "DK",
        "Phone": None,
        "Email": None,
        "Webpage": None,
        "AttPerson": None,
        "VatNumber": None,
        "EanNumber": None,
        "SENumber": None,
        "PNumber": None,
        "PaymentConditionType": "Netto",
        "PaymentConditionNumberOfDays": 8,
        "IsPerson": False,
        "IsMember": False,
        "MemberNumber": None,
        "UseCvr": False,
        "CompanyTypeKey": None,
        "InvoiceMailOutOptionKey": None,
        "PreferredInvoiceLanguageKey": "da-DK",
        "PreferredInvoiceCurrencyKey": "DKK",
        "IsDebitor": True,
        "IsCreditor": False,
        "CompanyStatus": None,
        "VatRegionKey": "DK",
    }


def _product_defaults(guid: str, number: int, price: Decimal) -> dict[str, Any]:
    incl = round2(price * Decimal("1.25"))
    return {
        "ProductGuid": guid,
        "ProductNumber": f"P-{number:03d}",
        "Name": f"Vare {number}",
        "Quantity": Decimal(1),
        "Unit": "parts",
        "AccountNumber": 1000,
        "BaseAmountValue": price,
        "BaseAmountValueInclVat": incl,
        "TotalAmount": price,
        "TotalAmountInclVat": incl,
        "ExternalReference": None,
        "Comment": None,
    }


def _sale_defaults(books: OrgBooks, guid: str, number: int, kind: str, day: date) -> dict[str, Any]:
    contact = next(iter(books.records["contacts"].values()), None)
    excl = Decimal("1000.00")
    sign = Decimal(-1) if kind == "creditnotes" else Decimal(1)
    return {
        "Number": number,
        "Guid": guid,
        "ExternalReference": None,
        "Date": day.isoformat(),
        "PaymentDate": (day + timedelta(days=8)).isoformat(),
        "Description": "Faktura" if kind == "invoices" else "Kreditnota",
        "Status": "Booked",
        "Type": "Invoice" if kind == "invoices" else "CreditNote",
        "ContactName": contact.data["Name"] if contact else None,
        "ContactGuid": contact.guid if contact else None,
        "TotalInclVat": sign * round2(excl * Decimal("1.25")),
        "TotalExclVat": sign * excl,
        "TotalInclVatInDkk": sign * round2(excl * Decimal("1.25")),
        "TotalExclVatInDkk": sign * excl,
        "MailOutStatus": "NotSent",
        "LatestMailOutType": None,
        "Currency": "DKK",
    }


def _trade_offer_defaults(books: OrgBooks, guid: str, number: int, day: date) -> dict[str, Any]:
    contact = next(iter(books.records["contacts"].values()), None)
    line = _offer_line("Konsulenttime", Decimal(10), Decimal("950.00"), "hours")
    return _trade_offer(
        guid,
        number,
        day,
        contact.guid if contact else stable_guid("contact", "none"),
        contact.data["Name"] if contact else None,
        [line],
        "Draft",
    )


def _offer_line(name: str, quantity: Decimal, price: Decimal, unit: str) -> dict[str, Any]:
    total = round2(quantity * price)
    return {
        "AccountName": "Salg af varer og ydelser m/moms",
        "BaseAmountValue": price,
        "BaseAmountValueInclVat": round2(price * Decimal("1.25")),
        "TotalAmount": total,
        "TotalAmountInclVat": round2(total * Decimal("1.25")),
        "ProductGuid": None,
        "Description": name,
        "Comments": None,
        "Quantity": quantity,
        "AccountNumber": 1000,
        "Unit": unit,
        "Discount": Decimal(0),
        "LineType": "Product",
    }


def _trade_offer(
    guid: str,
    number: int,
    day: date,
    contact_guid: str,
    contact_name: str | None,
    lines: list[dict[str, Any]],
    status: str,
) -> dict[str, Any]:
    excl = sum((line["TotalAmount"] for line in lines), Decimal(0))
    vat = round2(excl * Decimal("0.25"))
    return {
        "HasGeneratedAnyVouchers": status == "Invoiced",
        "ContactGuid": contact_guid,
        "Status": status,
        "MailOutStatus": "Sent" if status != "Draft" else "NotSent",
        "LatestMailOutType": "Email" if status != "Draft" else None,
        "GeneratedVouchers": [],
        "History": [
            {
                "Status": status,
                "UpdatedAt": _at(day),
                "TradeOfferEmailSentAt": _at(day, 11) if status != "Draft" else None,
                "ConfirmationEmailSentAt": None,
                "TotalInclVat": excl + vat,
                "Currency": "DKK",
            }
        ],
        "Guid": guid,
        "TimeStamp": f"{0x20A0000 + number:016X}",
        "Number": number,
        "ContactName": contact_name,
        "ShowLinesInclVat": False,
        "TotalExclVat": excl,
        "TotalVatableAmount": excl,
        "TotalInclVat": excl + vat,
        "TotalNonVatableAmount": Decimal(0),
        "TotalVat": vat,
        "TotalLines": [
            {"Type": "SubTotal", "TotalAmount": excl, "Position": 0, "Label": "Subtotal"},
            {"Type": "Vat", "TotalAmount": vat, "Position": 1, "Label": "Moms (25%)"},
            {"Type": "Total", "TotalAmount": excl + vat, "Position": 2, "Label": "Total DKK"},
        ],
        "InvoiceTemplateId": None,
        "Currency": "DKK",
        "Language": "da-DK",
        "ExternalReference": None,
        "Description": f"Tilbud {number}",
        "Comment": None,
        "Date": day.isoformat(),
        "ProductLines": lines,
        "Address": None,
    }


def _records(books: OrgBooks) -> None:
    """Contacts, products, invoices, credit notes and trade offers of Sandbox ApS."""
    base = date(2026, 1, 5)
    contacts = books.records["contacts"]
    for index, (name, person, street, zip_code, city, debitor, creditor) in enumerate(_CONTACTS):
        guid = stable_guid(books.id, "contact", index)
        data = _contact_defaults(guid, name)
        slug = name.lower().split()[0].strip("&,.")
        data.update(
            {
                "Street": street,
                "ZipCode": zip_code,
                "City": city,
                "Phone": f"+45 {20 + index:02d} {31 + index:02d} {40 + index:02d} {50 + index:02d}",
                "Email": f"kontakt@{slug}.dk" if not person else f"{slug}@mail.dk",
                "IsPerson": person,
                "UseCvr": not person,
                "VatNumber": None if person else f"DK{30000000 + index * 1234567 % 69999999}",
                "CompanyTypeKey": None if person else "ApS",
                "IsDebitor": debitor,
                "IsCreditor": creditor,
                "ExternalReference": f"CRM-{1000 + index}",
            }
        )
        created = _at(base + timedelta(days=index * 3))
        contacts[guid] = Record(guid=guid, data=data, created_at=created, updated_at=created)

    products = books.records["products"]
    for index, (number, name, unit, price) in enumerate(_PRODUCTS):
        guid = stable_guid(books.id, "product", index)
        data = _product_defaults(guid, index + 1, _money(price))
        data.update({"ProductNumber": number, "Name": name, "Unit": unit})
        created = _at(base + timedelta(days=index * 7))
        products[guid] = Record(guid=guid, data=data, created_at=created, updated_at=created)

    customers = [r for r in contacts.values() if r.data["IsDebitor"]]
    statuses = ("Paid", "Paid", "Booked", "Paid", "Overdue", "Paid", "Booked", "Draft")
    invoices = books.records["invoices"]
    for index in range(24):
        guid = stable_guid(books.id, "invoice", index)
        customer = customers[index % len(customers)]
        day = date(2026, 1, 8) + timedelta(days=index * 12)
        status = statuses[index % len(statuses)]
        excl = round2(Decimal(950) * (index % 7 + 1) + Decimal("125.50") * (index % 3))
        vat = round2(excl * Decimal("0.25"))
        data = {
            "Number": 0 if status == "Draft" else index + 1,
            "Guid": guid,
            "ExternalReference": f"ORD-{2026000 + index}",
            "Date": day.isoformat(),
            "PaymentDate": (day + timedelta(days=14)).isoformat(),
            "Description": f"Konsulentydelser, {day.strftime('%m/%Y')}",
            "Status": status,
            "Type": "Invoice",
            "ContactName": customer.data["Name"],
            "ContactGuid": customer.guid,
            "TotalInclVat": excl + vat,
            "TotalExclVat": excl,
            "TotalInclVatInDkk": excl + vat,
            "TotalExclVatInDkk": excl,
            "MailOutStatus": "NotSent" if status == "Draft" else "SeenByCustomer",
            "LatestMailOutType": None if status == "Draft" else "Email",
            "Currency": "DKK",
        }
        created = _at(day)
        invoices[guid] = Record(guid=guid, data=data, created_at=created, updated_at=created)

    credit_notes = books.records["creditnotes"]
    for index in range(3):
        guid = stable_guid(books.id, "creditnote", index)
        original = list(invoices.values())[index * 3]
        day = date.fromisoformat(original.data["Date"]) + timedelta(days=10)
        excl = -round2(original.data["TotalExclVat"] / 2)
        vat = round2(excl * Decimal("0.25"))
        data = {
            **original.data,
            "Number": index + 1,
            "Guid": guid,
            "ExternalReference": None,
            "Date": day.isoformat(),
            "PaymentDate": day.isoformat(),
            "Description": f"Kreditnota til faktura {original.data['Number']}",
            "Status": "Paid",
            "Type": "CreditNote",
            "TotalInclVat": excl + vat,
            "TotalExclVat": excl,
            "TotalInclVatInDkk": excl + vat,
            "TotalExclVatInDkk": excl,
        }
        created = _at(day)
        credit_notes[guid] = Record(guid=guid, data=data, created_at=created, updated_at=created)

    offers = books.records["tradeoffers"]
    offer_statuses = ("Draft", "CustomerAccepted", "Invoiced", "CustomerDeclined", "Draft", "Sent")
    for index in range(6):
        guid = stable_guid(books.id, "tradeoffer", index)
        customer = customers[(index * 2) % len(customers)]
        day = date(2026, 2, 2) + timedelta(days=index * 21)
        lines = [
            _offer_line("Konsulenttime", Decimal(8 + index * 4), Decimal("950.00"), "hours"),
            _offer_line("Workshop, halv dag", Decimal(1), Decimal("6500.00"), "session"),
        ]
        data = _trade_offer(
            guid,
            index + 1,
            day,
            customer.guid,
            customer.data["Name"],
            lines,
            offer_statuses[index],
        )
        created = _at(day)
        offers[guid] = Record(guid=guid, data=data, created_at=created, updated_at=created)


# --------------------------------------------------------------------------------------------
# Booked history


def _history(sandbox: Sandbox, books: OrgBooks) -> None:
    """Entries for share capital (2024), a few paid purchases (2025) and the booked invoices."""
    capital_day = date(2024, 1, 2)
    seeder = Writer(
        books=books, ids=sandbox.ids, now=_at(capital_day), username=DEMO_LOGIN, by_type="User"
    )
    year_numbers = books.voucher_numbers.setdefault(2024, set())
    year_numbers.add(1)
    write_entries(
        books,
        sandbox.ids,
        postings=[
            Posting(DEFAULT_BANK_ACCOUNT, Decimal("40000.00"), "Indskud af anpartskapital"),
            Posting(56000, Decimal("-40000.00"), "Indskud af anpartskapital"),
        ],
        entry_date=capital_day,
        voucher_number=1,
        voucher_guid=stable_guid(books.id, "capital"),
        voucher_type="manuel",
        file_guid=None,
        now=seeder.now,
    )

    purchases = (
        (date(2025, 2, 14), 5000, "Kontorartikler", "1249.00", 55030),
        (date(2025, 4, 3), 5040, "Telefon og internet, marts", "399.00", 55000),
        (date(2025, 6, 19), 3600, "Kundemiddag", "1860.00", 55030),
        (date(2025, 9, 8), 4080, "Hotel, Aarhus", "1295.00", 55030),
    )
    for day, account, text, amount, deposit in purchases:
        w = Writer(books=books, ids=sandbox.ids, now=_at(day), username=DEMO_LOGIN, by_type="User")
        model = PurchaseVoucherCreateModelV2(
            purchase_type="cash",
            voucher_date=day.isoformat(),
            deposit_account_number=deposit,
            lines=[
                PurchaseVoucherLineCreateModel(
                    amount=Decimal(amount), account_number=account, description=text
                )
            ],
        )
        voucher = create_purchase_voucher(w, model)
        book_purchase_voucher(w, voucher, timestamp=voucher.timestamp, number=None)

    for record in books.records["invoices"].values():
        data = record.data
        if data["Status"] == "Draft":
            continue
        day = date.fromisoformat(data["Date"])
        excl, incl = data["TotalExclVat"], data["TotalInclVat"]
        write_entries(
            books,
            sandbox.ids,
            postings=[
                Posting(
                    DEBTORS_ACCOUNT, incl, data["Description"], contact_guid=data["ContactGuid"]
                ),
                Posting(1000, -excl, data["Description"], books.vat_types["U25"]),
                Posting(SALES_VAT_ACCOUNT, -(incl - excl), data["Description"]),
            ],
            entry_date=day,
            voucher_number=data["Number"],
            voucher_guid=record.guid,
            voucher_type="Invoice",
            file_guid=None,
            now=_at(day, 12),
            contact_guid=data["ContactGuid"],
        )
