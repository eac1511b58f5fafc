"""The `fields=` values the client asks Dinero for: Dinero answers only the fields asked for,
spelled as asked (so these are also the data sources' columns, see `collections.COLUMNS`)."""

from __future__ import annotations

from typing import Final

ORGANIZATION_FIELDS: Final = (
    "Id,Name,Type,IsPro,IsPayingPro,IsVatFree,Email,Phone,Street,City,ZipCode,AttPerson,"
    "IsTaxFreeUnion,VatNumber"
)
ENTRY_ACCOUNT_FIELDS: Final = (
    "AccountNumber,Name,VatCode,Category,CategoryName,IsHidden,IsDefaultSalesAccount,"
    "PublicStandardNumber"
)
DEPOSIT_ACCOUNT_FIELDS: Final = (
    "AccountNumber,Name,IsDefault,IsHidden,BankRegistrationNumber,BankAccountNumber,"
    "BankSwiftNumber,BankIbanNumber,PublicStandardNumber"
)
CONTACT_FIELDS: Final = (
    "ContactGuid,Name,ExternalReference,IsPerson,Street,ZipCode,City,CountryKey,Phone,Email,"
    "Webpage,AttPerson,VatNumber,EanNumber,PaymentConditionType,PaymentConditionNumberOfDays,"
    "IsMember,MemberNumber,CompanyStatus,VatRegionKey,CreatedAt,UpdatedAt,DeletedAt,"
    "PreferredInvoiceLanguageKey,PreferredInvoiceCurrencyKey"
)
INVOICE_FIELDS: Final = (
    "Guid,Number,ExternalReference,ContactName,ContactGuid,Date,PaymentDate,Description,"
    "Currency,Status,MailOutStatus,LatestMailOutType,TotalExclVatInDkk,TotalInclVatInDkk,"
    "TotalExclVat,TotalInclVat,CreatedAt,UpdatedAt,DeletedAt"
)
SALES_FIELDS: Final = INVOICE_FIELDS + ",Type"
PRODUCT_FIELDS: Final = (
    "ProductGuid,Name,ProductNumber,Quantity,Unit,AccountNumber,BaseAmountValue,"
    "BaseAmountValueInclVat,TotalAmount,TotalAmountInclVat,ExternalReference,CreatedAt,"
    "UpdatedAt,DeletedAt"
)
TRADE_OFFER_FIELDS: Final = (
    "Guid,Number,TimeStamp,ContactName,ContactGuid,Address,Date,Comment,Description,"
    "ExternalReference,Language,Currency,TotalExclVat,TotalVatableAmount,TotalInclVat,"
    "TotalNonVatableAmount,TotalVat,HasGeneratedAnyVouchers,Status,MailOutStatus,"
    "LatestMailOutType,CreatedAt,UpdatedAt,DeletedAt"
)

ENTRY_FIELDS: Final = (
    "EntryGuid,AccountNumber,AccountName,Date,VoucherNumber,VoucherGuid,FileGuid,VoucherType,"
    "Description,VatType,VatCode,Amount,ContactGuid,Type"
)
"""The fields of an entry (its model, dumped by alias)."""

__all__ = [
    "CONTACT_FIELDS",
    "DEPOSIT_ACCOUNT_FIELDS",
    "ENTRY_ACCOUNT_FIELDS",
    "ENTRY_FIELDS",
    "INVOICE_FIELDS",
    "ORGANIZATION_FIELDS",
    "PRODUCT_FIELDS",
    "SALES_FIELDS",
    "TRADE_OFFER_FIELDS",
]
