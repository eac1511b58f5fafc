"""A Danish standard chart of accounts (Kontoplan) and the Danish VAT types (Momstyper).

The chart is generated deterministically from the table below: number, name and default VAT
code per account, grouped by Dinero's account categories. Purchase accounts ("udgifter før
skat") are 2000-9399; deposit accounts (Beholdninger: bank, kasse, kort, PayPal …) 55000-55999.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

PURCHASE_RANGE = (2000, 9399)
DEPOSIT_RANGE = (55000, 55999)

# Account numbers the bookkeeping posts to (Danish names as in the chart below).
SALES_VAT_ACCOUNT = 61000  # Salgsmoms
PURCHASE_VAT_ACCOUNT = 61010  # Købsmoms
EU_GOODS_VAT_ACCOUNT = 61020  # Moms af varekøb i udlandet (EU)
FOREIGN_SERVICES_VAT_ACCOUNT = 61030  # Moms af ydelseskøb i udlandet
NON_EU_GOODS_VAT_ACCOUNT = 61040  # Moms af varekøb uden for EU
REVERSE_CHARGE_VAT_ACCOUNT = 61050  # Moms af køb med omvendt betalingspligt
CREDITORS_ACCOUNT = 58000  # Leverandørgæld (kreditorer)
DEBTORS_ACCOUNT = 54000  # Debitorer
RETAINED_EARNINGS_ACCOUNT = 56010  # Overført resultat
DEFAULT_BANK_ACCOUNT = 55000  # Bankkonto

VatKind = Literal["purchase", "sale"]


@dataclass(frozen=True)
class VatTypeSpec:
    """One VAT type. `rate` is what Dinero lists (the deductible share for REP/HREP);
    `gross_rate` the VAT actually contained in an amount incl. VAT; reverse-charge types
    (rate 0) post `reverse_rate` both as købsmoms and on `reverse_account`."""

    code: str
    name: str
    rate: Decimal
    kind: VatKind
    gross_rate: Decimal = Decimal(0)
    vat_account: int | None = None
    reverse_rate: Decimal = Decimal(0)
    reverse_account: int | None = None


_Q = Decimal("0.25")


def _reverse_charge(code: str, name: str, account: int) -> VatTypeSpec:
    """A reverse-charge purchase type: rate 0, its 25 % posted both as købsmoms and on
    `account`."""
    return VatTypeSpec(
        code, name, Decimal(0), "purchase", Decimal(0), PURCHASE_VAT_ACCOUNT, _Q, account
    )


VAT_TYPES: tuple[VatTypeSpec, ...] = (
    VatTypeSpec("I25", "Dansk købsmoms", _Q, "purchase", _Q, PURCHASE_VAT_ACCOUNT),
    VatTypeSpec("U25", "Dansk salgsmoms", _Q, "sale", _Q, SALES_VAT_ACCOUNT),
    VatTypeSpec(
        "REP",
        "Repræsentation (25 % fradrag)",
        Decimal("0.0625"),
        "purchase",
        _Q,
        PURCHASE_VAT_ACCOUNT,
    ),
    VatTypeSpec(
        "HREP", "Hotel (75 % fradrag)", Decimal("0.1875"), "purchase", _Q, PURCHASE_VAT_ACCOUNT
    ),
    _reverse_charge("IEUV", "Varekøb i EU (rubrik A - varer)", EU_GOODS_VAT_ACCOUNT),
    _reverse_charge("IEUY", "Ydelseskøb i EU (rubrik A - ydelser)", FOREIGN_SERVICES_VAT_ACCOUNT),
    _reverse_charge("IVV", "Varekøb uden for EU", NON_EU_GOODS_VAT_ACCOUNT),
    _reverse_charge("IVY", "Ydelseskøb uden for EU", FOREIGN_SERVICES_VAT_ACCOUNT),
    _reverse_charge("OBPK", "Køb med omvendt betalingspligt", REVERSE_CHARGE_VAT_ACCOUNT),
    VatTypeSpec("UEUV", "Varesalg til EU (rubrik B - varer)", Decimal(0), "sale"),
    VatTypeSpec("UEUV2", "Varesalg til EU, ikke indberettet (rubrik B)", Decimal(0), "sale"),
    VatTypeSpec("UEUY", "Ydelsessalg til EU (rubrik B - ydelser)", Decimal(0), "sale"),
    VatTypeSpec("UVC", "Salg til lande uden for EU (rubrik C)", Decimal(0), "sale"),
    VatTypeSpec(
        "KUNS", "Kunstnermoms", Decimal("0.05"), "sale", Decimal("0.05"), SALES_VAT_ACCOUNT
    ),
    VatTypeSpec("OBPS", "Salg med omvendt betalingspligt", Decimal(0), "sale"),
)


@dataclass(frozen=True)
class AccountSpec:
    """One account of the standard chart."""

    number: int
    name: str
    vat_code: str | None
    category: str
    category_name: str
    deposit: bool = False
    hidden: bool = False


@dataclass(frozen=True)
class Category:
    """Dinero's account category (English key) and its Danish name."""

    key: str
    danish: str


TURNOVER = Category("Turnover", "Omsætning")
VARIABLE = Category("Variable Expenses", "Variable omkostninger")
SALARY = Category("Salary", "Lønomkostninger")
SALES_EXP = Category("Sales Expenses", "Salgsomkostninger")
TRAVEL = Category("Travel Expenses", "Rejse- og transportomkostninger")
PROPERTY_EXP = Category("Property Expenses", "Lokaleomkostninger")
ADMIN = Category("Administration Expenses", "Administrationsomkostninger")
DEPRECIATION = Category("Depreciation", "Afskrivninger")
INTEREST_INCOME = Category("Interest Income", "Renteindtægter")
INTEREST_EXPENSES = Category("Interest Expenses", "Renteudgifter")
CHARGE = Category("Charge", "Afgifter")
NOT_SET = Category("Not Set", "Ikke angivet")
TAX = Category("Tax", "Skat")
ANALYSIS = Category("Analysis", "Analysekonti")
INTANGIBLE = Category("IntangibleProperty", "Immaterielle anlægsaktiver")
PROPERTY = Category("Property", "Materielle anlægsaktiver")
FINANCIAL_ASSETS = Category("Financial Assets", "Finansielle anlægsaktiver")
TURNOVER_ASSETS = Category("Turnover Assets", "Varebeholdninger")
RECEIVABLES = Category("Receivables", "Tilgodehavender")
LIQUID = Category("Liquid Assets", "Likvide beholdninger")
EQUITY = Category("Equity", "Egenkapital")
LONG_DEBT = Category("Long Term Debt", "Langfristet gæld")
SHORT_DEBT = Category("Short Term Debt", "Kortfristet gæld")
VAT_DUE = Category("Vat Due", "Moms og afgifter")
SALARY_DUE = Category("Salary Due", "Skyldige lønrelaterede poster")

# number | name | default VAT code ("-" = none) [| flags: d = deposit, h = hidden]
_TABLE: dict[Category, str] = {
    TURNOVER: """
1000|Salg af varer og ydelser m/moms|U25
1010|Salg af varer m/moms|U25
1020|Salg af ydelser m/moms|U25
1030|Salg af abonnementer|U25
1040|Salg via webshop|U25
1050|Salg af konsulentydelser|U25
1060|Salg af licenser|U25
1070|Salg af reservedele|U25
1080|Salg med kunstnermoms|KUNS
1090|Salg med omvendt betalingspligt|OBPS
1100|Salg af varer til EU-lande|UEUV
1110|Salg af ydelser til EU-lande|UEUY
1120|Salg af varer til EU, ikke indberettet|UEUV2
1200|Salg af varer til lande uden for EU|UVC
1210|Salg af ydelser til lande uden for EU|UVC
1300|Momsfrit salg|-
1310|Salg af brugte aktiver|U25
1400|Fragtindtægter|U25
1410|Gebyrindtægter|U25
1420|Rykkergebyrer|-
1500|Provisionsindtægter|U25
1600|Lejeindtægter|U25
1700|Tilskud og refusioner|-
1800|Givne rabatter|U25
1810|Kursdifferencer, salg|-
1900|Regulering af igangværende arbejder|-
1910|Øreafrunding|-
""",
    VARIABLE: """
2000|Varekøb m/moms|I25
2010|Varekøb u/moms|-
2020|Køb af materialer|I25
2030|Køb af råvarer|I25
2040|Køb af handelsvarer|I25
2050|Emballage|I25
2060|Fragt på varekøb|I25
2070|Toldudgifter|-
2080|Underleverandører|I25
2090|Fremmed arbejde|I25
2100|Varekøb i EU|IEUV
2110|Ydelseskøb i EU|IEUY
2120|Materialer købt i EU|IEUV
2200|Varekøb uden for EU|IVV
2210|Ydelseskøb uden for EU|IVY
2300|Køb med omvendt betalingspligt|OBPK
2310|Byggeydelser med omvendt betalingspligt|OBPK
2400|Småværktøj|I25
2410|Arbejdstøj og sikkerhedsudstyr|I25
2420|Maskinleje|I25
2430|Reparation af maskiner|I25
2440|Brændstof til maskiner|I25
2450|Affaldshåndtering|I25
2460|Laboratorieudgifter|I25
2500|Lagerregulering|-
2510|Svind og kassation|-
2600|Modtagne rabatter|I25
2610|Kursdifferencer, varekøb|-
2700|Direkte lønninger, produktion|-
2710|Freelancere og honorarer|-
2800|Licenser til videresalg|I25
2810|Hosting til kunder|I25
2900|Andre direkte omkostninger|I25
""",
    SALARY: """
3000|Lønninger|-
3010|Gager|-
3020|Timelønninger|-
3030|Direktørløn|-
3040|Feriepenge|-
3050|Feriepenge, funktionærer|-
3060|Søgnehelligdagsbetaling|-
3070|Fritvalgskonto|-
3100|ATP-bidrag|-
3110|Pensionsbidrag, arbejdsgiver|-
3120|Pensionsbidrag, medarbejder|-
3130|Sundhedsforsikring|-
3140|AES- og AUB-bidrag|-
3150|Barsel.dk|-
3160|Finansieringsbidrag|-
3170|Arbejdsskadeforsikring|-
3200|Personalegoder|-
3210|Fri telefon|-
3220|Fri bil|-
3230|Sundhedsordning|I25
3300|Kørselsgodtgørelse|-
3310|Skattefri rejsegodtgørelse|-
3320|Personaleudgifter|I25
3330|Personalearrangementer|-
3340|Gaver til personale|-
3350|Kantineordning|I25
3360|Frugt og kaffe til personalet|I25
3400|Kurser og efteruddannelse|I25
3410|Rekruttering og jobannoncer|I25
3420|Lønrefusion|-
3430|Lønsumsafgift|-
3440|Lønadministration|I25
""",
    SALES_EXP: """
3500|Annoncer og reklame|I25
3510|Google Ads|IEUY
3520|Facebook- og Instagram-annoncer|IEUY
3530|LinkedIn-annoncer|IEUY
3540|Markedsføring online|I25
3550|Tryksager og brochurer|I25
3560|Messer og udstillinger|I25
3570|Sponsorater|I25
3580|Hjemmeside|I25
3590|Nyhedsbreve og e-mailmarketing|IEUY
3600|Repræsentation|REP
3610|Restaurationsbesøg|REP
3620|Gaver og blomster|-
3630|Gaver til forretningsforbindelser|-
3640|Kundearrangementer|REP
3650|Vareprøver|I25
3660|Provision til forhandlere|I25
3670|Salgsfremmende udgifter|I25
3680|Udsmykning og dekoration|I25
3690|Fotografering og video|I25
3700|Konkurrencer og præmier|I25
3710|Domænenavne|I25
3720|Søgemaskineoptimering|I25
3730|Fragt til kunder|I25
3740|Emballage til forsendelse|I25
3750|Returfragt|I25
3800|Salgsrejser|I25
3900|Tab på debitorer|-
3910|Konstaterede tab|-
3920|Nedskrivning af tilgodehavender|-
""",
    TRAVEL: """
4000|Rejseudgifter|I25
4010|Flybilletter|-
4020|Togbilletter|-
4030|Bus og offentlig transport|-
4040|Taxa|-
4050|Færgebilletter|-
4060|Bro- og vejafgifter|I25
4070|Parkering|I25
4080|Hotel|HREP
4090|Hotel i udlandet|-
4100|Måltider under rejse|REP
4110|Diæter og rejsegodtgørelse|-
4120|Rejseforsikring|-
4130|Visum og rejsedokumenter|-
4140|Billeje under rejse|I25
4200|Brændstof, varebil|I25
4210|Brændstof, personbil|-
4220|Elopladning|I25
4230|Bilforsikring|-
4240|Vægtafgift og grøn ejerafgift|-
4250|Reparation og vedligeholdelse af bil|I25
4260|Dæk og fælge|I25
4270|Vask og pleje af bil|I25
4280|Leasing af varebil|I25
4290|Leasing af personbil|-
4300|Vejhjælp|I25
4310|Syn af køretøjer|I25
4320|Kørsel i egen bil|-
4330|Parkeringsafgifter og bøder|-
4340|Vejafgifter i udlandet|-
""",
    PROPERTY_EXP: """
4500|Husleje|I25
4510|Husleje uden moms|-
4520|Fællesudgifter|I25
4530|El|I25
4540|Vand|I25
4550|Varme|I25
4560|Gas|I25
4570|Rengøring|I25
4580|Rengøringsartikler|I25
4590|Vedligeholdelse af lokaler|I25
4600|Reparation af lokaler|I25
4610|Ejendomsskat|-
4620|Forsikring af lokaler|-
4630|Alarm og vagt|I25
4640|Renovation|I25
4650|Leje af lager|I25
4660|Leje af parkeringsplads|I25
4670|Snerydning og havearbejde|I25
4680|Indretning af lokaler|I25
4690|Småanskaffelser til lokaler|I25
4700|Kontorfællesskab|I25
4710|Leje af mødelokaler|I25
4720|Flytteudgifter|I25
""",
    ADMIN: """
5000|Kontorartikler|I25
5010|Papir og tryksager|I25
5020|Porto|-
5030|Fragt og kurer|I25
5040|Telefon og internet|I25
5050|Mobiltelefon|I25
5060|Bredbånd|I25
5070|Telefon og internet, privat andel|-
5100|Edb-udgifter|I25
5110|Software og licenser|I25
5120|Software-abonnementer fra EU|IEUY
5130|Software-abonnementer uden for EU|IVY
5140|Hosting og servere|I25
5150|Cloud-tjenester|IEUY
5160|It-support|I25
5170|Edb-udstyr, småanskaffelser|I25
5180|Domæner og certifikater|I25
5190|Datasikkerhed og backup|I25
5200|Revisor|I25
5210|Bogføringshjælp|I25
5220|Advokat|I25
5230|Rådgivning og konsulenter|I25
5240|Inkassoomkostninger|I25
5250|Lønbureau|I25
5300|Forsikringer|-
5310|Erhvervsansvarsforsikring|-
5320|Bestyrelsesansvarsforsikring|-
5400|Kontingenter|-
5410|Brancheforeninger|I25
5420|Faglitteratur|I25
5430|Aviser og blade|-
5440|Abonnementer|I25
5500|Gebyrer|-
5510|Bankgebyrer|-
5520|Kortgebyrer|-
5530|MobilePay-gebyrer|-
5540|Gebyrer til betalingsløsninger|-
5550|Valutagebyrer|-
5600|Småanskaffelser|I25
5610|Kontorinventar, småanskaffelser|I25
5620|Kontorartikler købt i EU|IEUV
5630|Kaffe og forplejning|I25
5640|Mødeudgifter|I25
5650|Leasing af kontorudstyr|I25
5660|Leje af printer og kopimaskine|I25
5670|Arkivering og makulering|I25
5700|Kurser og konferencer|I25
5710|Juridisk bistand|I25
5720|Oversættelse|I25
5730|Tolkebistand|I25
5800|Offentlige gebyrer|-
5810|Gebyrer til Erhvervsstyrelsen|-
5820|Tinglysningsafgift|-
5900|Ikke fradragsberettigede omkostninger|-
5910|Bøder|-
5920|Diverse omkostninger|I25
5930|Kassedifferencer|-
5940|Øredifferencer|-
5950|Donationer|-
6000|Administrationsbidrag|I25
6010|Koncernadministration|-
6100|Erhvervsorganisationer|-
6200|Patenter og varemærker|I25
6300|Forskning og udvikling|I25
6400|Kvalitetssikring og certificering|I25
6500|Miljøafgifter|-
6600|Arbejdsmiljø|I25
6700|Velgørenhed|-
6800|Reklamegaver|I25
6900|Andre administrationsomkostninger|I25
""",
    DEPRECIATION: """
7000|Afskrivning på driftsmidler|-
7010|Afskrivning på inventar|-
7020|Afskrivning på edb-udstyr|-
7030|Afskrivning på biler|-
7040|Afskrivning på bygninger|-
7050|Afskrivning på indretning af lejede lokaler|-
7060|Afskrivning på goodwill|-
7070|Afskrivning på software|-
7080|Afskrivning på udviklingsprojekter|-
7100|Tab ved salg af driftsmidler|-
7110|Fortjeneste ved salg af driftsmidler|-
7200|Nedskrivning af anlægsaktiver|-
""",
    INTEREST_INCOME: """
8000|Renteindtægter, bank|-
8010|Renteindtægter, debitorer|-
8020|Renteindtægter, obligationer|-
8030|Udbytte af aktier|-
8040|Kursgevinster|-
8050|Valutakursgevinster|-
8060|Renter fra skattekontoen|-
8070|Gevinst på værdipapirer|-
9300|Resultat af kapitalandele|-
""",
    INTEREST_EXPENSES: """
8500|Renteudgifter, bank|-
8510|Renteudgifter, leverandører|-
8520|Renteudgifter, realkreditlån|-
8530|Renteudgifter, leasing|-
8540|Renter til skattekontoen|-
8550|Kurstab|-
8560|Valutakurstab|-
8570|Morarenter|-
8580|Stiftelsesprovision|-
8590|Garantiprovision|-
""",
    CHARGE: """
9100|Elafgift, godtgørelse|-
9110|Vandafgift, godtgørelse|-
9120|Olie- og flaskegasafgift|-
9130|Kulafgift|-
9140|CO2-afgift|-
""",
    NOT_SET: """
9200|Ekstraordinære indtægter|-
9210|Ekstraordinære udgifter|-
""",
    TAX: """
9400|Skat af årets resultat|-
9410|Regulering af skat for tidligere år|-
9420|Regulering af udskudt skat|-
""",
    ANALYSIS: """
9500|Statistikkonto|-
9510|Fordelingskonto|-
9520|Projektanalyse|-
""",
    INTANGIBLE: """
51000|Goodwill|-
51010|Færdiggjorte udviklingsprojekter|-
51020|Software|-
51030|Patenter og licenser|-
51040|Akkumulerede afskrivninger, immaterielle aktiver|-
""",
    PROPERTY: """
51100|Grunde og bygninger|-
51110|Indretning af lejede lokaler|-
51120|Driftsmidler og inventar|-
51130|Edb-udstyr|-
51140|Biler|-
51150|Varebiler|-
51160|Maskiner|-
51170|Akkumulerede afskrivninger, driftsmidler|-
51180|Akkumulerede afskrivninger, biler|-
51190|Akkumulerede afskrivninger, bygninger|-
""",
    FINANCIAL_ASSETS: """
52000|Deposita|-
52010|Kapitalandele i tilknyttede virksomheder|-
52020|Værdipapirer|-
52030|Lån til nærtstående parter|-
""",
    TURNOVER_ASSETS: """
53000|Varelager|-
53010|Råvarer og hjælpematerialer|-
53020|Igangværende arbejder|-
53030|Forudbetalinger for varer|-
""",
    RECEIVABLES: """
54000|Debitorer|-
54010|Tilgodehavender fra salg|-
54020|Andre tilgodehavender|-
54030|Periodeafgrænsningsposter|-
54040|Forudbetalte omkostninger|-
54050|Tilgodehavende moms|-
54060|Tilgodehavende selskabsskat|-
54070|Mellemregning med anpartshavere|-
54080|Tilgodehavender hos medarbejdere|-
54090|Tilgodehavende lønrefusion|-
""",
    LIQUID: """
55000|Bankkonto|-|d
55010|Opsparingskonto|-|d
55020|Kasse|-|d
55030|Firmakort|-|d
55040|PayPal|-|d
55050|Stripe|-|d
55060|MobilePay|-|d
55070|Zettle|-|d
55080|Medarbejderudlæg|-|d
55090|Valutakonto EUR|-|dh
55100|Gammel bankkonto|-|dh
55110|Kortindløsning Nets|-|dh
""",
    EQUITY: """
56000|Anpartskapital|-
56010|Overført resultat|-
56020|Årets resultat|-
56030|Reserve for udviklingsomkostninger|-
56040|Foreslået udbytte|-
56050|Privat hævet|-
56060|Privat indskud|-
56070|Egenkapital primo|-
""",
    LONG_DEBT: """
57000|Banklån|-
57010|Realkreditlån|-
57020|Leasingforpligtelser|-
57030|Lån fra anpartshavere|-
57040|Udskudt skat|-
57050|Modtagne deposita|-
""",
    SHORT_DEBT: """
58000|Leverandørgæld|-
58010|Skyldige omkostninger|-
58020|Periodeafgrænsningsposter, passiver|-
58030|Forudbetalinger fra kunder|-
58040|Kassekredit|-
58050|Kreditkortgæld|-
58060|Skyldig selskabsskat|-
58070|Mellemregning med medarbejdere|-
58080|Anden gæld|-
58090|Skyldigt udbytte|-
""",
    SALARY_DUE: """
59000|Skyldig A-skat|-
59010|Skyldigt AM-bidrag|-
59020|Skyldigt ATP-bidrag|-
59030|Skyldige feriepenge|-
59040|Skyldig pension|-
59050|Skyldig løn|-
59060|Feriepengeforpligtelse|-
59070|Skyldigt bidrag til Barsel.dk|-
""",
    VAT_DUE: """
61000|Salgsmoms|-
61010|Købsmoms|-
61020|Moms af varekøb i EU|-
61030|Moms af ydelseskøb i udlandet|-
61040|Moms af varekøb uden for EU|-
61050|Moms af køb med omvendt betalingspligt|-
61060|Olie- og flaskegasafgift|-
61070|Elafgift|-
61080|Momsafregning|-
61090|Skyldig moms|-
""",
}


def standard_chart() -> list[AccountSpec]:
    """The standard chart, sorted by account number."""
    accounts: list[AccountSpec] = []
    for category, text in _TABLE.items():
        for line in text.strip().splitlines():
            parts = line.split("|")
            number, name, vat = int(parts[0]), parts[1], parts[2]
            flags = parts[3] if len(parts) > 3 else ""
            accounts.append(
                AccountSpec(
                    number=number,
                    name=name,
                    vat_code=None if vat == "-" else vat,
                    category=category.key,
                    category_name=category.danish,
                    deposit="d" in flags,
                    hidden="h" in flags,
                )
            )
    accounts.sort(key=lambda a: a.number)
    return accounts


# Ranges used to place a newly created account in a category.
_RANGES: tuple[tuple[int, int, Category], ...] = (
    (1000, 1999, TURNOVER),
    (2000, 2999, VARIABLE),
    (3000, 3499, SALARY),
    (3500, 3999, SALES_EXP),
    (4000, 4499, TRAVEL),
    (4500, 4999, PROPERTY_EXP),
    (5000, 6999, ADMIN),
    (7000, 7999, DEPRECIATION),
    (8000, 8499, INTEREST_INCOME),
    (8500, 8999, INTEREST_EXPENSES),
    (9000, 9199, CHARGE),
    (9200, 9399, NOT_SET),
    (9400, 9499, TAX),
    (9500, 9999, ANALYSIS),
    (51000, 51099, INTANGIBLE),
    (51100, 51999, PROPERTY),
    (52000, 52999, FINANCIAL_ASSETS),
    (53000, 53999, TURNOVER_ASSETS),
    (54000, 54999, RECEIVABLES),
    (55000, 55999, LIQUID),
    (56000, 56999, EQUITY),
    (57000, 57999, LONG_DEBT),
    (58000, 58999, SHORT_DEBT),
    (59000, 59999, SALARY_DUE),
    (61000, 61999, VAT_DUE),
)


def category_for(number: int) -> Category:
    """The category an account number belongs to (Not Set outside the known ranges)."""
    for low, high, category in _RANGES:
        if low <= number <= high:
            return category
    return NOT_SET


def is_purchase_account(number: int) -> bool:
    """2000-9399: the accounts a purchase voucher line may use."""
    return PURCHASE_RANGE[0] <= number <= PURCHASE_RANGE[1]


def is_result_account(number: int) -> bool:
    """Profit-and-loss accounts (1000-9999); the rest are balance-sheet accounts."""
    return number < 10000
