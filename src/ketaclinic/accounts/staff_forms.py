"""What the administration pages post, as the typed values the services take (accounts/staff.py,
accounts/invitations.py, accounts/site_identifiers.py). Text is stripped; identifiers defined in capitals
(DEA numbers, state codes) are upper-cased; nothing else is changed. An unreadable value raises the
service's error naming the field, so the page shows it beside the input."""

from __future__ import annotations

from datetime import date

from django.http import QueryDict

from ketaclinic.accounts.site_identifiers import SiteIdentifiers, SiteIdentifiersError
from ketaclinic.accounts.staff import AccessGrant, ClinicianIdentifiers, Profile, StaffError


def _text(post: QueryDict, name: str) -> str:
    return str(post.get(name, "") or "").strip()


def parse_profile(post: QueryDict) -> Profile:
    return Profile(
        first_name=_text(post, "first_name"),
        last_name=_text(post, "last_name"),
        email=_text(post, "email"),
        phone=_text(post, "phone"),
    )


def parse_grant(post: QueryDict) -> AccessGrant:
    raw = [str(v).strip() for v in post.getlist("sites") if str(v).strip()]
    if any(not v.isdigit() for v in raw):
        raise StaffError({"sites": "choose sites from the list"})
    return AccessGrant(
        role=_text(post, "role"),
        site_ids=tuple(int(v) for v in raw),
        all_sites=post.get("all_sites") == "on",
        break_glass_allowed=post.get("break_glass_allowed") == "on",
    )


def parse_identifiers(post: QueryDict) -> ClinicianIdentifiers:
    return ClinicianIdentifiers(
        npi=_text(post, "npi"),
        dea_number=_text(post, "dea_number").upper(),
        licence_number=_text(post, "licence_number"),
        licence_state=_text(post, "licence_state").upper(),
    )


def parse_site_identifiers(post: QueryDict) -> SiteIdentifiers:
    errors: dict[str, str] = {}
    certified_raw = _text(post, "rems_certified")
    certified = {"yes": True, "no": False, "": None}.get(certified_raw)
    if certified_raw not in ("yes", "no", ""):
        errors["rems_certified"] = "choose certified, not certified or not recorded"
    on_raw = _text(post, "rems_certified_on")
    certified_on = None
    if on_raw:
        try:
            certified_on = date.fromisoformat(on_raw)
        except ValueError:
            errors["rems_certified_on"] = f"{on_raw!r} is not a date (YYYY-MM-DD)"
    if errors:
        raise SiteIdentifiersError(errors)
    return SiteIdentifiers(
        address_line1=_text(post, "address_line1"),
        address_line2=_text(post, "address_line2"),
        city=_text(post, "city"),
        state=_text(post, "state").upper(),
        zip_code=_text(post, "zip_code"),
        phone=_text(post, "phone"),
        dea_registration=_text(post, "dea_registration").upper(),
        rems_certified=certified,
        rems_certification_id=_text(post, "rems_certification_id"),
        rems_certified_on=certified_on,
    )
