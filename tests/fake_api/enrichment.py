"""Enrichment bundles: the catalogue and deterministic payloads per (bundle, contact)."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Iterable
from typing import Any

from .data import Contact, Dataset, Draw, ascii_slug, digest_int

BUNDLE_LABELS: dict[str, str] = {
    "individual-core": "Person",
    "emails": "Email",
    "phones": "Phone",
    "location": "Location",
    "professional": "Professional",
    "auto": "Automotive",
    "interests": "Interests",
    "donor": "Donor",
    "household": "Household",
    "purchases": "Purchases",
    "financial": "Financial",
}
BUNDLE_KEYS: tuple[str, ...] = tuple(BUNDLE_LABELS)
CONTACT_ID_PATTERN = re.compile(r"^id_[0-9a-f]{16}$")

# Share of pool contacts each bundle knows, in percent: sparse bundles exercise `found: false`.
_FOUND_PERCENT = {
    "individual-core": 97,
    "emails": 88,
    "phones": 75,
    "location": 92,
    "professional": 85,
    "auto": 45,
    "interests": 70,
    "donor": 30,
    "household": 60,
    "purchases": 55,
    "financial": 50,
}

_EMAIL_HOSTS = ("gmail.com", "outlook.com", "web.de", "yahoo.co.jp", "icloud.com")
_VEHICLES = (
    ("Toyota", "Corolla"),
    ("Ford", "F-150"),
    ("Volkswagen", "Golf"),
    ("Tesla", "Model 3"),
    ("Honda", "Civic"),
    ("BMW", "3 Series"),
    ("Škoda", "Octavia"),
)
_INTERESTS = ("golf", "travel", "cooking", "technology", "fitness", "wine", "photography", "chess")
_CAUSES = ("education", "environment", "health", "animal welfare", "arts & culture", "veterans")
_CATEGORIES = ("electronics", "apparel", "home & garden", "books", "sporting goods", "beauty")
_INCOME = ("<$50K", "$50K-100K", "$100K-150K", "$150K-250K", "$250K+")
_NET_WORTH = ("<$100K", "$100K-500K", "$500K-1M", "$1M-5M", "$5M+")
_CREDIT = ("300-579", "580-669", "670-739", "740-799", "800-850")
_DATE_ANCHOR = dt.date(2024, 1, 1)
_STREETS = ("Main St", "Hauptstraße", "Rue de la Paix", "Market St, Suite 100")
_PHONE_PREFIX = {"US": "+1 415", "CA": "+1 416", "GB": "+44 20", "DE": "+49 89", "JP": "+81 3"}


def bundle_catalogue(enabled: Iterable[str]) -> list[dict[str, Any]]:
    """Return GET /enrich/bundles items."""
    on = set(enabled)
    return [
        {"key": key, "path": f"/enrich/{key}", "label": label, "enabled": key in on}
        for key, label in BUNDLE_LABELS.items()
    ]


def _date(draw: Draw) -> str:
    # A fixed anchor, not the API's clock: payloads must not change when `today` moves.
    return (_DATE_ANCHOR + dt.timedelta(days=draw.below(1000))).isoformat()


def _none_if_empty(value: str) -> str | None:
    return value or None


class Enricher:
    """Looks contacts up in a bundle, with cached payloads and JSON texts."""

    def __init__(self, dataset: Dataset) -> None:
        """Build on the dataset's contact pool."""
        self.dataset = dataset
        self._json: dict[tuple[str, str], str] = {}

    def payload(self, bundle: str, contact_id: str) -> dict[str, Any] | None:
        """Return the bundle's data for a contact, or None when the bundle does not know it."""
        index = self.dataset.contact_index(contact_id)
        if index is None:
            return None
        draw = Draw(digest_int(f"{self.dataset.seed}|bundle|{bundle}|{index}", 32))
        if not draw.chance(_FOUND_PERCENT[bundle]):
            return None
        return _BUILDERS[bundle](self.dataset, self.dataset.contact(index), draw)

    def payload_json(self, bundle: str, contact_id: str) -> str:
        """Return the payload as compact JSON text, or "" when there is none."""
        key = (bundle, contact_id)
        text = self._json.get(key)
        if text is None:
            data = self.payload(bundle, contact_id) if contact_id else None
            text = (
                "" if data is None else json.dumps(data, ensure_ascii=False, separators=(",", ":"))
            )
            self._json[key] = text
        return text


def _individual_core(_ds: Dataset, contact: Contact, draw: Draw) -> dict[str, Any]:
    first, last = contact.tail[0], contact.tail[1]
    return {
        "first_name": first,
        "last_name": last,
        "middle_name": draw.pick(("", "A.", "Marie", "J.", "")) or None,
        "gender": draw.pick(("female", "male", "unknown")),
        "birth_year": 1950 + draw.below(55),
    }


def _emails(ds: Dataset, contact: Contact, draw: Draw) -> dict[str, Any]:
    user = ascii_slug(f"{contact.tail[0]} {contact.tail[1]}").replace("-", ".") or "contact"
    work = ds.companies[contact.company].domain
    emails = [{"address": f"{user}@{work}", "type": "work", "last_seen": _date(draw)}]
    for _ in range(draw.below(3)):
        host = draw.pick(_EMAIL_HOSTS)
        address = f"{user}{draw.below(100)}@{host}"
        emails.append({"address": address, "type": "personal", "last_seen": _date(draw)})
    return {"emails": emails}


def _phones(_ds: Dataset, contact: Contact, draw: Draw) -> dict[str, Any]:
    prefix = _PHONE_PREFIX.get(contact.tail[8], "+1 212")
    phones = [
        {
            "number": f"{prefix} {draw.digits('###-####')}",
            "type": draw.pick(("mobile", "work", "home")),
            "line_type": draw.pick(("wireless", "landline", "voip")),
            "last_seen": _date(draw),
        }
        for _ in range(1 + draw.below(2))
    ]
    return {"phones": phones}


def _location(ds: Dataset, contact: Contact, draw: Draw) -> dict[str, Any]:
    city, state, country, _postal, lat, lon = ds.location_of(contact)
    return {
        "address_line": f"{1 + draw.below(2000)} {draw.pick(_STREETS)}",
        "city": city,
        "state": _none_if_empty(state),
        "postal_code": _none_if_empty(contact.tail[9]),
        "country": country,
        "latitude": round(lat + (draw.below(2000) - 1000) / 10000, 5),
        "longitude": round(lon + (draw.below(2000) - 1000) / 10000, 5),
    }


def _professional(ds: Dataset, contact: Contact, _draw: Draw) -> dict[str, Any]:
    company = ds.companies[contact.company]
    _f, _l, title, seniority, department, linkedin, *_ = contact.tail
    return {
        "job_title": _none_if_empty(title),
        "seniority": _none_if_empty(seniority),
        "department": department,
        "company_name": company.name,
        "company_domain": company.domain,
        "linkedin_url": _none_if_empty(linkedin),
    }


def _auto(_ds: Dataset, _contact: Contact, draw: Draw) -> dict[str, Any]:
    vehicles = []
    for _ in range(1 + draw.below(2)):
        make, model = draw.pick(_VEHICLES)
        vehicles.append({"make": make, "model": model, "year": 2005 + draw.below(21)})
    return {"vehicles": vehicles}


def _sample(draw: Draw, items: tuple[str, ...], at_most: int) -> list[str]:
    chosen = {draw.pick(items) for _ in range(1 + draw.below(at_most))}
    return sorted(chosen)


def _interests(_ds: Dataset, _contact: Contact, draw: Draw) -> dict[str, Any]:
    return {"interests": _sample(draw, _INTERESTS, 4)}


def _donor(_ds: Dataset, _contact: Contact, draw: Draw) -> dict[str, Any]:
    return {"causes": _sample(draw, _CAUSES, 3), "donor_flag": draw.chance(60)}


def _household(_ds: Dataset, _contact: Contact, draw: Draw) -> dict[str, Any]:
    size = 1 + draw.below(6)
    return {
        "household_size": size,
        "children_present": size > 2 and draw.chance(70),
        "home_owner": draw.chance(60),
    }


def _purchases(_ds: Dataset, _contact: Contact, draw: Draw) -> dict[str, Any]:
    return {"categories": _sample(draw, _CATEGORIES, 3), "last_purchase_date": _date(draw)}


def _financial(_ds: Dataset, _contact: Contact, draw: Draw) -> dict[str, Any]:
    return {
        "income_range": draw.pick(_INCOME),
        "net_worth_range": draw.pick(_NET_WORTH),
        "credit_range": draw.pick(_CREDIT),
    }


_BUILDERS: dict[str, Callable[[Dataset, Contact, Draw], dict[str, Any]]] = {
    "individual-core": _individual_core,
    "emails": _emails,
    "phones": _phones,
    "location": _location,
    "professional": _professional,
    "auto": _auto,
    "interests": _interests,
    "donor": _donor,
    "household": _household,
    "purchases": _purchases,
    "financial": _financial,
}
