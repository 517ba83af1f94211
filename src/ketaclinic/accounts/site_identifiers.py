"""A site as a registrant: postal address, phone, DEA registration and SPRAVATO REMS certification, kept by
administrators on the site's settings page (issue 14 point 5).

They are typed once here instead of on every record: the REMS Patient Monitoring Form's setting name and
address fields are filled from them (chairside/rems_services.py, clinical.md §2.4), the controlled-drug
register prints the site as the registrant with its DEA registration (ledger/reports.py, 21 CFR 1304.04),
and the pre-dose gate's "setting certified" item reads the certification (``gate_certification``).

A REMS certification is recorded as yes, no or not recorded (``Site.rems_certified`` None). "No" means no
esketamine at this site: the gate's item fails whatever is answered at the chair. Every change is audited
with before and after.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date

from django.http import HttpRequest
from django.utils import timezone

from ketaclinic.accounts.models import Site, User
from ketaclinic.accounts.staff import save_changed
from ketaclinic.audit import services as audit
from ketaclinic.audit.models import Action
from ketaclinic.clinical import identifiers as ids
from ketaclinic.clinical.rems import setting_certification
from ketaclinic.core.errors import DomainError

CATEGORY = "site-settings"
LINE_MAX_CHARS = 100
CITY_MAX_CHARS = 60
CERTIFICATION_ID_MAX_CHARS = 60


class SiteIdentifiersError(DomainError):
    status = 422

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


@dataclass(frozen=True, slots=True)
class SiteIdentifiers:
    address_line1: str = ""
    address_line2: str = ""
    city: str = ""
    state: str = ""
    zip_code: str = ""
    phone: str = ""
    dea_registration: str = ""
    rems_certified: bool | None = None
    rems_certification_id: str = ""
    rems_certified_on: date | None = None


FIELDS = tuple(SiteIdentifiers.__dataclass_fields__)


def identifiers_of(site: Site) -> SiteIdentifiers:
    return SiteIdentifiers(**{name: getattr(site, name) for name in FIELDS})


def problems(values: SiteIdentifiers, *, site: Site, today: date) -> dict[str, str]:
    """Every problem at once, naming the field and the rule."""
    errors: dict[str, str] = {}
    for name, value, limit in (
        ("address_line1", values.address_line1, LINE_MAX_CHARS),
        ("address_line2", values.address_line2, LINE_MAX_CHARS),
        ("city", values.city, CITY_MAX_CHARS),
        ("rems_certification_id", values.rems_certification_id, CERTIFICATION_ID_MAX_CHARS),
    ):
        if len(value) > limit:
            errors[name] = f"at most {limit} characters (this has {len(value)})"
    address = (values.address_line1, values.city, values.state, values.zip_code)
    if any(address) or values.address_line2:
        # A postal address is printed whole or not at all: the REMS form needs line 1, city, state and ZIP.
        for name, value in zip(("address_line1", "city", "state", "zip_code"), address, strict=True):
            if not value and name not in errors:
                errors[name] = "required for a postal address (line 1, city, state and ZIP)"
    if values.state and "state" not in errors:
        problem = ids.state_problem(values.state)
        if problem:
            errors["state"] = problem
    if values.zip_code and "zip_code" not in errors:
        problem = ids.zip_problem(values.zip_code)
        if problem:
            errors["zip_code"] = problem
    if values.phone:
        problem = ids.phone_problem(values.phone)
        if problem:
            errors["phone"] = problem
    if values.dea_registration:
        problem = ids.dea_problem(values.dea_registration)
        if problem:
            errors["dea_registration"] = problem
        else:
            other = (
                Site.objects.filter(
                    organization_id=site.organization_id, dea_registration=values.dea_registration
                )
                .exclude(pk=site.pk)
                .first()
            )
            if other is not None:
                # 21 CFR 1301.12: a separate registration for each place where controlled substances are kept.
                errors["dea_registration"] = (
                    f"already the registration of {other.name}: each site where stock is kept has its own"
                )
    if values.rems_certified is True:
        if not values.rems_certification_id:
            errors["rems_certification_id"] = "enter the certification ID the SPRAVATO REMS gave this setting"
        if values.rems_certified_on is None:
            errors["rems_certified_on"] = "enter the date the setting was certified"
    if values.rems_certified_on is not None and values.rems_certified_on > today:
        errors["rems_certified_on"] = f"{values.rems_certified_on.isoformat()} is in the future"
    if values.rems_certified is not True and (values.rems_certification_id or values.rems_certified_on):
        errors["rems_certified"] = "a certification ID or date is given: choose 'certified' (or clear them)"
    return errors


def update_site_identifiers(
    *, admin: User, site: Site, values: SiteIdentifiers, request: HttpRequest | None = None
) -> list[str]:
    """Save the site's address, phone, DEA registration and REMS certification; returns what changed."""
    if site.organization_id != admin.org_id:
        raise SiteIdentifiersError({"site": "is not a site of your organization"})
    errors = problems(values, site=site, today=timezone.localdate(timezone.now(), site.zone))
    if errors:
        raise SiteIdentifiersError(errors)
    before, after = save_changed(site, asdict(values))
    if not after:
        return []
    audit.record(
        user=admin,
        action=Action.CHANGE,
        category=CATEGORY,
        object_type="Site",
        object_id=site.pk,
        before=before,
        after=after,
        request=request,
        detail="registrant and REMS certification",
    )
    return list(after)


@dataclass(frozen=True, slots=True)
class GateCertification:
    """What the pre-dose gate's "setting certified" item uses: the answer and where it came from."""

    certified: bool | None
    note: str


def site_record(site: Site) -> str:
    """The site's REMS certification in words, for the gate and the session page."""
    if site.rems_certified is True:
        since = f" on {site.rems_certified_on.isoformat()}" if site.rems_certified_on else ""
        return f"site record: certified, ID {site.rems_certification_id}{since}"
    if site.rems_certified is False:
        return "site record: not certified"
    return ""


def gate_certification(site: Site, answered: bool | None) -> GateCertification:
    """The gate's "setting certified" answer from the site's record and what staff answered at the chair
    (clinical/rems.setting_certification: a "no" from either stops, the site's "yes" is enough)."""
    return GateCertification(
        certified=setting_certification(site_record=site.rems_certified, answered=answered),
        note=site_record(site),
    )
