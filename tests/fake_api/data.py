"""Deterministic synthetic data: feeds, companies, contacts and intent rows.

Every value is a pure function of the seed and of what it describes (a feed, a day, a row
index, a contact index), so any slice of any export can be regenerated on demand instead of
being stored. The vocabularies are deliberately hostile to naive CSV and JSON handling.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import struct
import unicodedata
import uuid
from array import array
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, NamedTuple

Row = tuple[str, ...]
"""One export row in CONTRACT_COLUMNS order; an empty string is an empty field."""

CONTRACT_COLUMNS: tuple[str, ...] = (
    "contact_id",
    "domain",
    "company_name",
    "industry",
    "employee_range",
    "revenue_range",
    "topic",
    "intent_score",
    "signal_date",
    "first_seen",
    "last_seen",
    "first_name",
    "last_name",
    "job_title",
    "seniority",
    "department",
    "linkedin_url",
    "city",
    "state",
    "country",
    "postal_code",
)
COLUMN_INDEX = {name: i for i, name in enumerate(CONTRACT_COLUMNS)}

TOPICS = (
    "Cloud Security",
    "Zero Trust",
    "Identity & Access Management",
    "Data Warehousing",
    'AI, ML & "Generative" Analytics',
    "Payroll Software",
    "CRM",
    "ERP",
    "Kubernetes",
    "Email Marketing",
    "Sales Engagement",
    "Customer Data Platform",
)

# (name, kind, query, topics, max_lookback_days)
_FEED_TEMPLATES: tuple[tuple[str, str, str | None, tuple[str, ...], int], ...] = (
    ("Cloud Security Buyers", "topics", None, TOPICS[0:3], 90),
    ("Target Accounts, EMEA", "domains", None, (TOPICS[3], TOPICS[7], TOPICS[4]), 60),
    (
        'Free text: "warehouse migration"',
        "free_text",
        "companies migrating their data warehouse to the cloud",
        (TOPICS[3], TOPICS[4]),
        30,
    ),
    ("Payroll Switchers", "topics", None, (TOPICS[5], TOPICS[7]), 120),
    ("Revenue Tech Stack", "domains", None, TOPICS[6:12], 45),
)

INDUSTRIES = (
    "Software",
    "Financial Services",
    "Healthcare",
    "Manufacturing",
    "Retail",
    "Education",
    "Logistics & Transportation",
    "Energy, Oil & Gas",
    "Media & Entertainment",
    "Telecommunications",
)
EMPLOYEE_RANGES = (
    "1-10",
    "11-50",
    "51-200",
    "201-500",
    "501-1,000",
    "1,001-5,000",
    "5,001-10,000",
    "10,000+",
)
REVENUE_RANGES = ("$0-1M", "$1M-10M", "$10M-50M", "$50M-100M", "$100M-500M", "$500M-1B", "$1B+")
SENIORITIES = ("C-Level", "VP", "Director", "Manager", "Senior", "Entry")
DEPARTMENTS = (
    "Sales",
    "Marketing",
    "Engineering",
    "Finance",
    "Human Resources",
    "Operations",
    "IT",
    "Legal",
)
_TITLE_PATTERNS = {
    "C-Level": "Chief {dept} Officer",
    "VP": "VP {dept}",
    "Director": "Director of {dept}",
    "Manager": "{dept} Manager",
    "Senior": "Senior {dept} Specialist",
    "Entry": "{dept} Associate",
}
HOSTILE_TITLES = (
    "VP Sales\nEMEA",
    'Senior "Cloud" Architect',
    "Director, Finance & Operations",
    "Ingénieur logiciel",
    "Head of R&D; Platform",
)
FIRST_NAMES = (
    "Anna",
    "José",
    "Zoë",
    "Mohammed",
    "Li",
    "Siobhán",
    "Øystein",
    "Priya",
    "John",
    "Emily",
    "Łukasz",
    "François",
    "Yuki",
    "Sarah",
    "David",
    "Chloé",
)
LAST_NAMES = (
    "Müller",
    "O'Brien",
    "García",
    "Nguyễn",
    "Smith",
    "Johnson",
    "van der Berg",
    "Kowalski",
    "Søndergaard",
    "田中",
    "Brown",
    "Dubois",
    "Rossi",
    "Patel",
)
# (city, state, country, postal code pattern: "#" is replaced by digits, lat, lon)
LOCATIONS: tuple[tuple[str, str, str, str, float, float], ...] = (
    ("San Francisco", "CA", "US", "941##", 37.77, -122.42),
    ("New York", "NY", "US", "100##", 40.71, -74.01),
    ("Austin", "TX", "US", "787##", 30.27, -97.74),
    ("Chicago", "IL", "US", "606##", 41.88, -87.63),
    ("Toronto", "ON", "CA", "M5V #A#", 43.65, -79.38),
    ("London", "", "GB", "EC1A #BB", 51.51, -0.13),
    ("München", "BY", "DE", "803##", 48.14, 11.58),
    ("Zürich", "ZH", "CH", "80##", 47.37, 8.54),
    ("Paris", "", "FR", "750##", 48.86, 2.35),
    ("São Paulo", "SP", "BR", "01310-###", -23.55, -46.63),
    ("東京", "", "JP", "100-####", 35.68, 139.69),
    ("Kraków", "", "PL", "31-###", 50.06, 19.94),
    ("Sydney", "NSW", "AU", "20##", -33.87, 151.21),
)
_COUNTRY_LOCATIONS: dict[str, tuple[int, ...]] = {}
for _i, _loc in enumerate(LOCATIONS):
    _COUNTRY_LOCATIONS.setdefault(_loc[2], ())
    _COUNTRY_LOCATIONS[_loc[2]] += (_i,)

# Named companies that any parser must survive; they get extra weight so small exports hold them.
_NOTABLE_COMPANIES = (
    ("Acme, Inc.", "acme.com", "US"),
    ('The "Best" Widgets', "bestwidgets.com", "US"),
    ("Müller & Söhne GmbH", "mueller-soehne.de", "DE"),
    ("東京テック株式会社", "tokyo-tech.co.jp", "JP"),
    ("Café Olé S.A.", "cafe-ole.fr", "FR"),
    ("Smith, Jones & Partners, LLP", "smithjones.co.uk", "GB"),
)
_NOTABLE_WEIGHT = 12
_GENERATED_COMPANIES = 300
_NAME_PARTS = (
    ("Northwind", "Vertex", "Summit", "Pioneer", "Lumen", "Orbit", "Granite", "Blue Harbor"),
    ("Labs", "Systems", "Holdings", "Analytics", "Logistics", "Health", "Software", "Foods"),
    ("Inc.", "LLC", "Ltd", "Corp.", "", "", "AG", "plc"),
)
_FIRST_SEEN_DAYS = 31
_HHMM = tuple(f"{m // 60:02d}:{m % 60:02d}:" for m in range(1440))
_SSZ = tuple(f"{s:02d}Z" for s in range(60))
_SCORES = tuple(f"{40 + s // 100}.{s % 100:02d}" for s in range(6000))
_WORDS = struct.Struct("<4I").unpack


def digest_int(text: str, size: int = 16) -> int:
    """Return a stable pseudo-random integer for a text."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=size).digest(), "little")


class Draw:
    """Successive independent choices taken out of one large hash value."""

    def __init__(self, value: int) -> None:
        """Start drawing from a hash value."""
        self.value = value

    def below(self, n: int) -> int:
        """Return a number in [0, n)."""
        self.value, r = divmod(self.value, n)
        return r

    def pick(self, items: Sequence[Any]) -> Any:
        """Return one of the items."""
        return items[self.below(len(items))]

    def chance(self, percent: int) -> bool:
        """Return True with the given probability in percent."""
        return self.below(100) < percent

    def digits(self, pattern: str) -> str:
        """Replace each '#' of the pattern by a digit."""
        return "".join(str(self.below(10)) if ch == "#" else ch for ch in pattern)


def ascii_slug(text: str) -> str:
    """Lower-case ASCII letters and digits of a text, joined by dashes."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    words = "".join(ch if ch.isalnum() else " " for ch in plain.lower()).split()
    return "-".join(words)


class Company(NamedTuple):
    """A company; `head` is its part of a row (domain .. revenue_range)."""

    name: str
    domain: str
    head: Row
    location: int


class Contact(NamedTuple):
    """A person of the contact pool; `tail` is its part of a row (first_name .. postal_code)."""

    number: int
    contact_id: str
    company: int
    tail: Row


class Dataset:
    """All synthetic data of one fake server."""

    def __init__(self, seed: int, rows_per_day: int | tuple[int, int], contact_pool: int) -> None:
        """Prepare the company table; contacts and rows are generated on demand."""
        low, high = (rows_per_day, rows_per_day) if isinstance(rows_per_day, int) else rows_per_day
        if not 0 <= low <= high:
            raise ValueError(f"rows_per_day must be 0 <= min <= max, got {rows_per_day!r}")
        if contact_pool < 1:
            raise ValueError("contact_pool must be at least 1")
        self.seed = seed
        self.rows_low, self.rows_high = low, high
        self.contact_pool = contact_pool
        self.companies = [self._make_company(i) for i in range(_GENERATED_COMPANIES)]
        weighted = [i for i in range(len(_NOTABLE_COMPANIES)) for _ in range(_NOTABLE_WEIGHT)]
        self.company_table = tuple(weighted + list(range(_GENERATED_COMPANIES)))
        self._contacts: dict[int, Contact] = {}
        self._contact_index: dict[str, int] | None = None
        self._day_counts: dict[tuple[str, dt.date], int] = {}
        self._contact_columns: dict[tuple[str, dt.date], array[int]] = {}
        self._feed_topics: dict[str, tuple[str, ...]] = {}
        self._company_tails = tuple(self._company_tail(c) for c in self.companies)

    # Feeds

    def feed_uuid(self, name: str) -> str:
        """Return a stable feed UUID for a name of this seed."""
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"contactbased-fake:{self.seed}:{name}"))

    def make_feed(self, index: int) -> dict[str, Any]:
        """Return the Feed object of the index-th accessible feed."""
        name, kind, query, topics, max_lookback = _FEED_TEMPLATES[index % len(_FEED_TEMPLATES)]
        if index >= len(_FEED_TEMPLATES):
            name = f"{name} #{index // len(_FEED_TEMPLATES) + 1}"
        draw = Draw(digest_int(f"{self.seed}|feed|{index}"))
        created = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(
            days=draw.below(200), seconds=draw.below(86400)
        )
        updated = created + dt.timedelta(days=draw.below(90), seconds=draw.below(86400))
        return self.register_feed(
            {
                "feed_id": self.feed_uuid(f"feed:{index}"),
                "name": name,
                "kind": kind,
                "query": query,
                "topics": list(topics),
                "domain_count": 0 if kind == "topics" else 50 + draw.below(5000),
                "max_lookback_days": max_lookback,
                "created_at": iso_timestamp(created),
                "updated_at": iso_timestamp(updated),
            }
        )

    def register_feed(self, feed: dict[str, Any]) -> dict[str, Any]:
        """Remember the topics a feed's rows draw from."""
        self._feed_topics[feed["feed_id"]] = tuple(feed["topics"]) or TOPICS
        return feed

    def builder_preview(self, query: str) -> dict[str, Any]:
        """Return the domains a free-text query would match."""
        draw = Draw(digest_int(f"{self.seed}|builder|{query.casefold()}"))
        domain_count = 20 + draw.below(3000)
        sample = sorted({self.companies[draw.below(len(self.companies))].domain for _ in range(25)})
        return {"query": query, "domains": sample, "domain_count": domain_count}

    # Companies and contacts

    def _make_company(self, i: int) -> Company:
        draw = Draw(digest_int(f"{self.seed}|company|{i}"))
        if i < len(_NOTABLE_COMPANIES):
            name, domain, country = _NOTABLE_COMPANIES[i]
        else:
            first, second, suffix = (draw.pick(part) for part in _NAME_PARTS)
            name = f"{first} {second} {suffix}".strip()
            country = LOCATIONS[draw.below(len(LOCATIONS))][2]
            domain = f"{ascii_slug(first + second).replace('-', '')}{i}.com"
        revenue = "" if draw.chance(25) else draw.pick(REVENUE_RANGES)
        industry = "" if draw.chance(5) else draw.pick(INDUSTRIES)
        head = (domain, name, industry, draw.pick(EMPLOYEE_RANGES), revenue)
        return Company(name, domain, head, draw.pick(_COUNTRY_LOCATIONS[country]))

    @staticmethod
    def _company_tail(company: Company) -> Row:
        city, _state, country, *_ = LOCATIONS[company.location]
        return ("", "", "", "", "", "", city, "", country, "")

    def contact(self, index: int) -> Contact:
        """Return the index-th contact of the pool."""
        found = self._contacts.get(index)
        if found is None:
            found = self._contacts[index] = self._make_contact(index)
        return found

    def contact_id(self, index: int) -> str:
        """Return the contact id of the index-th contact of the pool."""
        return self.contact(index).contact_id

    def contact_index(self, contact_id: str) -> int | None:
        """Return the pool index of a contact id, or None when it is not in the pool."""
        if self._contact_index is None:
            self._contact_index = {self.contact_id(i): i for i in range(self.contact_pool)}
        return self._contact_index.get(contact_id)

    def _make_contact(self, index: int) -> Contact:
        text = f"{self.seed}|contact|{index}"
        contact_id = "id_" + hashlib.blake2b(text.encode(), digest_size=8).hexdigest()
        draw = Draw(digest_int(text + "|attributes", 32))
        company_index = draw.pick(self.company_table)
        company = self.companies[company_index]
        first, last = draw.pick(FIRST_NAMES), draw.pick(LAST_NAMES)
        seniority, department = draw.pick(SENIORITIES), draw.pick(DEPARTMENTS)
        if draw.chance(12):
            title = draw.pick(HOSTILE_TITLES)
        elif draw.chance(10):
            title = ""
        else:
            title = _TITLE_PATTERNS[seniority].format(dept=department)
        linkedin = ""
        if draw.chance(70):
            handle = ascii_slug(f"{first} {last}") or "member"
            linkedin = f"https://www.linkedin.com/in/{handle}-{draw.below(1 << 24):06x}"
        location = company.location if draw.chance(70) else draw.below(len(LOCATIONS))
        city, state, country, postal_pattern, *_ = LOCATIONS[location]
        postal = "" if draw.chance(15) else draw.digits(postal_pattern)
        seniority = "" if draw.chance(8) else seniority
        tail = (first, last, title, seniority, department, linkedin, city, state, country, postal)
        return Contact(index, contact_id, company_index, tail)

    def location_of(self, contact: Contact) -> tuple[str, str, str, str, float, float]:
        """Return the LOCATIONS entry of a contact's city."""
        city = contact.tail[6]
        return next(loc for loc in LOCATIONS if loc[0] == city)

    # Rows

    def day_count(self, feed_id: str, day: dt.date) -> int:
        """Return the number of rows of a complete day of a feed."""
        key = (feed_id, day)
        count = self._day_counts.get(key)
        if count is None:
            spread = self.rows_high - self.rows_low + 1
            count = self.rows_low + digest_int(f"{self.seed}|{feed_id}|{day}|count", 8) % spread
            self._day_counts[key] = count
        return count

    def _prefix(self, feed_id: str, day: dt.date) -> bytes:
        return f"{self.seed}|{feed_id}|{day.isoformat()}|".encode()

    def contact_column(self, feed_id: str, day: dt.date) -> array[int]:
        """Return the pool index of each row's contact of a complete day, -1 for none."""
        key = (feed_id, day)
        column = self._contact_columns.get(key)
        if column is None:
            prefix, pool, blake2b = self._prefix(feed_id, day), self.contact_pool, hashlib.blake2b
            column = array("i")
            for index in range(self.day_count(feed_id, day)):
                a = _WORDS(blake2b(prefix + index.to_bytes(4, "little"), digest_size=16).digest())[
                    0
                ]
                column.append((a // 10) % pool if a % 10 else -1)
            self._contact_columns[key] = column
        return column

    def rows(self, feed_id: str, day: dt.date, indices: Iterable[int]) -> Iterator[Row]:
        """Generate the rows of a feed's day at the given indexes.

        One flat loop over small integers and lookup tables on purpose: it is the hot path of
        every page and CSV. The contact draw must stay in step with `contact_column`.
        """
        prefix, pool, blake2b = self._prefix(feed_id, day), self.contact_pool, hashlib.blake2b
        signal_date = day.isoformat()
        stamp_day = signal_date + "T"
        earlier = [f"{day - dt.timedelta(days=k)}T" for k in range(_FIRST_SEEN_DAYS)]
        topics = self._feed_topics.get(feed_id, TOPICS)
        topic_draws = len(topics) * 20  # one draw in 20 leaves the topic empty
        table, n_table = self.company_table, len(self.company_table)
        companies, company_tails = self.companies, self._company_tails
        contacts, contact = self._contacts, self.contact
        hhmm, ssz, scores = _HHMM, _SSZ, _SCORES
        for index in indices:
            # a: contact; b: company and topic; c: score and last_seen; d: first_seen
            a, b, c, d = _WORDS(
                blake2b(prefix + index.to_bytes(4, "little"), digest_size=16).digest()
            )
            if a % 10:
                who = (a // 10) % pool
                person = contacts.get(who) or contact(who)
                contact_id, head, tail = (
                    person.contact_id,
                    companies[person.company].head,
                    person.tail,
                )
            else:
                pick = table[b % n_table]
                contact_id, head, tail = "", companies[pick].head, company_tails[pick]
            topic_draw = (b >> 12) % topic_draws
            topic = topics[topic_draw % len(topics)] if topic_draw >= len(topics) else ""
            last, back, first = (c >> 13) % 86400, d % _FIRST_SEEN_DAYS, (d >> 5) % 86400
            if back == 0 and first > last:
                first, last = last, first
            yield (
                contact_id,
                *head,
                topic,
                scores[c % 6000],
                signal_date,
                earlier[back] + hhmm[first // 60] + ssz[first % 60],
                stamp_day + hhmm[last // 60] + ssz[last % 60],
                *tail,
            )

    def value_counts(self, column: str) -> dict[str, int]:
        """Count the values of a column over the contact pool (topics: over the feeds)."""
        if column == "topic":
            counts: dict[str, int] = {}
            for topics in self._feed_topics.values():
                for topic in topics:
                    counts[topic] = counts.get(topic, 0) + 1
            return counts
        position = COLUMN_INDEX[column]
        counts = {}
        for i in range(self.contact_pool):
            person = self.contact(i)
            head = self.companies[person.company].head
            value = (person.contact_id, *head, "", "", "", "", "", *person.tail)[position]
            if value:
                counts[value] = counts.get(value, 0) + 1
        return counts


def iso_timestamp(moment: dt.datetime) -> str:
    """Format an aware datetime as ISO 8601 UTC with a `Z`, to the second."""
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
