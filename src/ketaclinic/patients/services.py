"""Patient registry use cases. Services never commit: the request (or command) owns the transaction.

Every query for patient data starts from ``visible_patients(user)``, which confines it to the user's
organization and sites, so a forgotten check is hard to write (design.md, "permission-scoped helper").
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import Case, IntegerField, Q, QuerySet, Value, When
from django.http import HttpRequest
from django.utils import timezone

from ketaclinic.accounts.models import BreakGlassGrant, Site, User
from ketaclinic.audit import services as audit
from ketaclinic.audit.models import Action
from ketaclinic.clinical import body
from ketaclinic.clinical.age_range import MIN_REASON_CHARS as MIN_AGE_REASON_CHARS
from ketaclinic.clinical.age_range import AgeRange, age_in_years, clinic_age_range, outside_range
from ketaclinic.core.access import ADMIN, PRESCRIBER
from ketaclinic.core.errors import DomainError
from ketaclinic.core.limits import too_many_places
from ketaclinic.core.text import control_problem
from ketaclinic.patients.matching import (
    duplicate_reason,
    mrn_key,
    normalize,
    prefix_upper_bound,
    swapped_day_month,
)
from ketaclinic.patients.models import Patient, Sex

CATEGORY = "demographics"
PAGE_SIZE = 25
EDITABLE_FIELDS = (
    "site",
    "mrn",
    "given_name",
    "family_name",
    "date_of_birth",
    "sex",
    "phone",
    "email",
    "address",
    "emergency_contact_name",
    "emergency_contact_phone",
    "emergency_contact_relation",
    "escort_name",
    "escort_phone",
    "weight_kg",
    "height_cm",
    "prescriber",
)
REQUIRED = ("given_name", "family_name", "date_of_birth", "sex")
MAX_LENGTHS = {f.name: f.max_length for f in Patient._meta.fields if getattr(f, "max_length", None)}


class PatientError(DomainError):
    """Base of the registry's domain errors; the edges map them to HTTP (core/errors.py)."""


class PatientValidationError(PatientError):
    status = 422

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


class PatientNotFound(PatientError):
    status = 404


NOT_A_DUPLICATE_FIELD = "not_a_duplicate_reason"


@dataclass(frozen=True)
class DuplicateCandidate:
    """A stored patient who may be the person being registered, and why (patients.matching.duplicate_reason)."""

    patient: Patient
    reason: str


class PossibleDuplicate(PatientValidationError):
    """Registration held back: the organization already has a patient born on the same day (or with day and
    month swapped) with matching names (:func:`possible_duplicates`). ``candidates`` are those the user may
    open, each with why it matched (``visible``: their records); ``elsewhere`` counts those at sites the user
    does not cover (not named: the user may not read them). Registering anyway needs the reason why this is
    a different person."""

    def __init__(self, candidates: list[DuplicateCandidate], elsewhere: int) -> None:
        named = [
            f"{c.patient.mrn} {c.patient.family_name}, {c.patient.given_name} ({c.patient.site.name}; "
            f"{c.reason})"
            for c in candidates
        ]
        if elsewhere:
            named.append(f"{elsewhere} at a site you do not cover")
        super().__init__(
            {
                NOT_A_DUPLICATE_FIELD: "this may be a patient already registered with the same or a similar "
                f"name and birth date: {'; '.join(named)}. Open that record, or say why this is a different "
                "person"
            }
        )
        self.candidates = candidates
        self.visible = [c.patient for c in candidates]
        self.elsewhere = elsewhere


OUTSIDE_AGE_RANGE_FIELD = "outside_age_range_reason"


class OutsideAgeRange(PatientValidationError):
    """Registration (or a changed birth date) held back: the patient is outside the clinic's age range
    (clinical/age_range.py). Going ahead needs the reason why this clinic treats this patient."""

    def __init__(self, problem: str, age_range: AgeRange) -> None:
        self.message = f"{problem} ({age_range.source})"
        super().__init__(
            {
                OUTSIDE_AGE_RANGE_FIELD: f"{self.message}: to register this patient, say why this clinic treats "
                f"them (at least {MIN_AGE_REASON_CHARS} characters)"
            }
        )
        self.age_range = age_range


class OutsideYourSites(PatientError):
    """The patient belongs to the organization but to a site the user does not cover (break-glass may apply)."""

    status = 403

    def __init__(self, patient: Patient) -> None:
        super().__init__("This patient is registered at a site you do not cover.")
        self.patient = patient


class PatientConflict(PatientError):
    status = 409

    def __init__(self, current: Patient) -> None:
        super().__init__(
            f"Someone else changed this record (now version {current.version}) while you were editing. "
            "Your changes were not saved; review the current values and apply them again."
        )
        self.current = current


def covers_all_sites(user: User) -> bool:
    return user.role == ADMIN or user.all_sites


def visible_patients(user: User) -> QuerySet[Patient]:
    """Patients of the user's organization at the user's sites (plus active break-glass grants)."""
    if user.organization_id is None:
        return Patient.objects.none()
    qs = Patient.objects.filter(organization_id=user.organization_id)
    if covers_all_sites(user):
        return qs
    granted = BreakGlassGrant.objects.filter(user=user, expires_at__gt=timezone.now()).values("patient_id")
    return qs.filter(Q(site__in=user.sites.all()) | Q(id__in=granted))


def get_patient(
    *, user: User, patient_id: Any, request: HttpRequest | None = None, purpose: str = "chart"
) -> Patient:
    """Load one patient for ``user`` and audit the read. Another organization's record is simply not found."""
    try:
        key = uuid.UUID(str(patient_id))
    except ValueError:
        raise PatientNotFound("No such patient.") from None
    patient = visible_patients(user).filter(pk=key).select_related("site").first()
    if patient is None:
        same_org = Patient.objects.filter(pk=key, organization_id=user.org_id).select_related("site").first()
        if same_org is not None:
            raise OutsideYourSites(same_org)
        raise PatientNotFound("No such patient.")
    audit.record(
        user=user,
        action=Action.QUERY,
        category=CATEGORY,
        patient=patient,
        object_type="Patient",
        object_id=patient.pk,
        request=request,
        detail=purpose,
    )
    return patient


def get_related_patient(
    *, user: User, patient_id: Any, request: HttpRequest | None = None, purpose: str = "chart"
) -> Patient:
    """:func:`get_patient` for a patient reached through another resource (their plans, consents, scales,
    sessions): one at a site the user does not cover is simply not found, as another organization's is —
    only the patient's own record says that it exists elsewhere (403, where break-glass may be asked)."""
    try:
        return get_patient(user=user, patient_id=patient_id, request=request, purpose=purpose)
    except OutsideYourSites:
        raise PatientNotFound("No such patient.") from None


@dataclass(frozen=True)
class SearchPage:
    patients: list[Patient]
    page: int
    pages: int
    total: int


def _starts_with(field: str, term: str) -> Q:
    """``field`` starts with ``term`` as an index range scan (patients.matching.prefix_upper_bound)."""
    upper = prefix_upper_bound(term)
    condition = Q(**{f"{field}__gte": term})
    return condition & Q(**{f"{field}__lt": upper}) if upper is not None else condition


def search_patients(
    *,
    user: User,
    name: str = "",
    mrn: str = "",
    date_of_birth: date | None = None,
    page: int = 1,
    page_size: int = PAGE_SIZE,
    request: HttpRequest | None = None,
) -> SearchPage:
    """Name tokens match the start of the given or family name; the MRN matches in any case, ignoring
    spaces and dashes, in full or by its start or its end ("k0001", "123" find K000123), an exact MRN listed
    first; DOB exactly. Every condition is an index range scan within the organization."""
    qs = visible_patients(user)
    for token in normalize(name).split()[:4]:
        qs = qs.filter(_starts_with("family_norm", token) | _starts_with("given_norm", token))
    key = mrn_key(mrn)
    if mrn.strip() and not key:
        qs = qs.none()  # only punctuation: nothing to match
    elif key:
        qs = qs.filter(_starts_with("mrn_key", key) | _starts_with("mrn_key_reversed", key[::-1]))
    if date_of_birth is not None:
        qs = qs.filter(date_of_birth=date_of_birth)
    total = qs.count()
    pages = max(1, -(-total // page_size))
    page = min(max(1, page), pages)
    order: list[Any] = ["family_norm", "given_norm", "id"]
    if key:
        qs = qs.annotate(
            mrn_rank=Case(When(mrn_key=key, then=Value(0)), default=Value(1), output_field=IntegerField())
        )
        order.insert(0, "mrn_rank")
    found = list(qs.select_related("site").order_by(*order)[(page - 1) * page_size : page * page_size])
    audit.record(
        user=user,
        action=Action.QUERY,
        category="patient-search",
        object_type="Patient",
        request=request,
        detail=f"{total} match(es); page {page}",
    )
    return SearchPage(patients=found, page=page, pages=pages, total=total)


def _clean(user: User, data: dict[str, Any], *, partial: bool, today: date) -> dict[str, Any]:
    """Validate every field at once; the error names each bad field and why (nothing is written)."""
    errors: dict[str, str] = {}
    cleaned: dict[str, Any] = {}
    unknown = set(data) - set(EDITABLE_FIELDS)
    for name in sorted(unknown):
        errors[name] = "is not a patient field"
    for name in EDITABLE_FIELDS:
        if name not in data:
            if not partial and name in REQUIRED:
                errors[name] = "is required"
            continue
        value = data[name]
        if isinstance(value, str):
            value = value.strip()
        if value in (None, ""):
            if name in REQUIRED:
                errors[name] = "is required"
            elif name == "site":
                pass
            elif name == "prescriber":
                cleaned[name] = None
            else:
                cleaned[name] = None if name in ("weight_kg", "height_cm") else ""
            continue
        limit = MAX_LENGTHS.get(name)
        if isinstance(value, str) and limit and len(value) > limit and name not in ("site", "date_of_birth"):
            errors[name] = f"is longer than {limit} characters"
            continue
        if isinstance(value, str) and (why := control_problem(value)):  # one-line fields, every path
            errors[name] = why
            continue
        try:
            cleaned[name] = _clean_field(user, name, value, today)
        except PatientValidationError as exc:
            errors.update(exc.errors)
    if errors:
        raise PatientValidationError(errors)
    return cleaned


def _clean_field(user: User, name: str, value: Any, today: date) -> Any:
    def bad(reason: str) -> PatientValidationError:
        return PatientValidationError({name: reason})

    if name == "date_of_birth":
        if isinstance(value, str):
            try:
                value = date.fromisoformat(value)
            except ValueError:
                raise bad(f"{value!r} is not a date (use YYYY-MM-DD)") from None
        if value > today:
            raise bad(f"{value.isoformat()} is in the future")
        if value < today - timedelta(days=365 * 130):
            raise bad(f"{value.isoformat()} is more than 130 years ago")
        return value
    if name == "sex":
        if value not in Sex.values:
            raise bad(f"{value!r} is not one of {', '.join(Sex.values)}")
        return value
    if name == "email":
        try:
            validate_email(value)
        except DjangoValidationError:
            raise bad(f"{value!r} is not an email address") from None
        return value
    if name in ("weight_kg", "height_cm"):
        try:
            number = Decimal(str(value))
        except InvalidOperation:
            raise bad(f"{value!r} is not a number") from None
        if not number.is_finite():
            raise bad(f"{value!r} is not a number")
        problems = (
            body.validate_measurements(weight_kg=float(number))
            if name == "weight_kg"
            else body.validate_measurements(height_cm=float(number))
        )
        if problems:
            raise bad(problems[name])
        unit = "kg" if name == "weight_kg" else "cm"
        if (problem := too_many_places(number, label="", places=1, unit=unit)) is not None:
            raise bad(problem)  # the record keeps 0.1: a dose is computed from it, never rounded
        return number.quantize(Decimal("0.1"))
    if name == "prescriber":
        prescriber_id = value.pk if isinstance(value, User) else value
        prescriber = User.objects.filter(
            pk=prescriber_id, organization_id=user.org_id, role=PRESCRIBER, is_active=True
        ).first()
        if prescriber is None:
            raise bad("is not an active prescriber of your organization")
        return prescriber
    if name == "site":
        site_id = value.pk if isinstance(value, Site) else value
        site = Site.objects.filter(pk=site_id, organization_id=user.org_id).first()
        if site is None:
            raise bad("is not a site of your organization")
        if not covers_all_sites(user) and not user.sites.filter(pk=site.pk).exists():
            raise bad(f"{site.name} is not one of your sites")
        return site
    return value


def _snapshot(patient: Patient) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name in EDITABLE_FIELDS:
        value: object
        if name == "site":
            value = patient.site.code
        elif name == "prescriber":
            value = patient.prescriber.username if patient.prescriber is not None else None
        else:
            value = getattr(patient, name)
        values[name] = str(value) if isinstance(value, Decimal | date | uuid.UUID) else value
    return values


def _set_search_keys(patient: Patient) -> None:
    """The normalized names and MRN keys the search and the duplicate check read (patients.matching)."""
    patient.given_norm = normalize(patient.given_name)
    patient.family_norm = normalize(patient.family_name)
    patient.mrn_key = mrn_key(patient.mrn)
    patient.mrn_key_reversed = patient.mrn_key[::-1]


def _next_mrn(user: User) -> str:
    count = Patient.objects.filter(organization_id=user.org_id).count()
    while True:
        count += 1
        candidate = f"K{count:06d}"
        if not Patient.objects.filter(organization_id=user.org_id, mrn=candidate).exists():
            return candidate


def possible_duplicates(
    *, user: User, given_name: str, family_name: str, date_of_birth: date
) -> list[DuplicateCandidate]:
    """Patients of the user's organization (any site) who may be the person being registered: born on the
    same day (or on the day with day and month swapped) with matching names — the same, an initial or a
    shortened given name, the family name one typing slip apart, or the two names swapped
    (patients.matching.duplicate_reason). The rows are read by birth date (indexed), the names compared
    here. Not a decision: staff confirm or override."""
    given, family = normalize(given_name), normalize(family_name)
    if not given or not family or user.organization_id is None:
        return []
    born = [date_of_birth]
    swapped = swapped_day_month(date_of_birth)
    if swapped is not None:
        born.append(swapped)
    rows = Patient.objects.filter(organization_id=user.organization_id, date_of_birth__in=born)
    found = []
    for other in rows.select_related("site").order_by("mrn"):
        reason = duplicate_reason(
            given=given,
            family=family,
            born=date_of_birth,
            other_given=other.given_norm,
            other_family=other.family_norm,
            other_born=other.date_of_birth,
        )
        if reason is not None:
            found.append(DuplicateCandidate(other, reason))
    return found


def _duplicate_check(
    user: User,
    cleaned: dict[str, Any],
    reason: str,
    request: HttpRequest | None,
    exclude: Patient | None = None,
) -> list[Patient]:
    """The possible duplicates of a registration (or of a record whose name or birth date is changed:
    ``exclude`` is that record): refused (PossibleDuplicate) unless ``reason`` says why this is a different
    person. The candidates the user is shown are reads of their records: audited."""
    candidates = [
        c
        for c in possible_duplicates(
            user=user,
            given_name=cleaned["given_name"],
            family_name=cleaned["family_name"],
            date_of_birth=cleaned["date_of_birth"],
        )
        if exclude is None or c.patient.pk != exclude.pk
    ]
    found = [c.patient for c in candidates]
    if not found:
        return []
    if len(reason.strip()) >= 3:
        return found
    visible_ids = set(
        visible_patients(user).filter(pk__in=[p.pk for p in found]).values_list("pk", flat=True)
    )
    shown = [c for c in candidates if c.patient.pk in visible_ids]
    for candidate in (c.patient for c in shown):
        audit.record(
            user=user,
            action=Action.QUERY,
            category=CATEGORY,
            patient=candidate,
            object_type="Patient",
            object_id=candidate.pk,
            request=request,
            detail="shown as a possible duplicate at registration",
        )
    raise PossibleDuplicate(shown, len(found) - len(shown))


def age_range() -> AgeRange:
    """The ages this clinic treats (settings KETACLINIC_PATIENT_MIN_AGE / _MAX_AGE; default 18 and over)."""
    return clinic_age_range(
        min_years=settings.KETACLINIC_PATIENT_MIN_AGE, max_years=settings.KETACLINIC_PATIENT_MAX_AGE
    )


@dataclass(frozen=True)
class AgeOnChart:
    """The patient's age today, and when outside the clinic's range, why and the reason given."""

    years: int
    outside: str | None
    age_range: AgeRange
    reason: str


def age_on_chart(patient: Patient, today: date | None = None) -> AgeOnChart:
    today = today or patient.site.today()
    rng = age_range()
    return AgeOnChart(
        years=age_in_years(patient.date_of_birth, today),
        outside=outside_range(patient.date_of_birth, today, rng),
        age_range=rng,
        reason=patient.age_range_reason,
    )


def _age_check(born: date, reason: str, today: date) -> str:
    """The reason to keep on the record: empty inside the clinic's age range; outside it, ``reason`` when
    it says why (else :class:`OutsideAgeRange`, nothing is written)."""
    rng = age_range()
    problem = outside_range(born, today, rng)
    if problem is None:
        return ""
    if len(reason.strip()) < MIN_AGE_REASON_CHARS:
        raise OutsideAgeRange(problem, rng)
    return reason.strip()


def _registration_day(user: User) -> date:
    """The day a registration is judged on (a birth date not after it): the latest calendar day at any of
    the organization's sites, so a clinic east of the server never sees today's newborn "in the future"."""
    days = [site.today() for site in Site.objects.filter(organization_id=user.org_id)]
    return max(days, default=timezone.localdate())


def create_patient(
    *,
    user: User,
    data: dict[str, Any],
    not_a_duplicate_reason: str = "",
    outside_age_range_reason: str = "",
    request: HttpRequest | None = None,
) -> Patient:
    """Register a patient. A registration that may duplicate an existing patient (same date of birth,
    matching names: :func:`possible_duplicates`) is refused with those patients named unless
    ``not_a_duplicate_reason`` says why this is a different person; one outside the clinic's age range
    (:func:`age_range`) is refused unless ``outside_age_range_reason`` says why the clinic treats this
    patient. The reasons (and the patients overridden) are audited with the registration; the age reason
    is kept on the record and shown on the chart."""
    today = _registration_day(user)
    cleaned = _clean(user, data, partial=False, today=today)
    cleaned["age_range_reason"] = _age_check(cleaned["date_of_birth"], outside_age_range_reason, today)
    overridden = _duplicate_check(user, cleaned, not_a_duplicate_reason, request)
    if "site" not in cleaned:
        default_site = user.sites.first() if not covers_all_sites(user) else None
        if default_site is None:
            raise PatientValidationError({"site": "is required"})
        cleaned["site"] = default_site
    if not cleaned.get("mrn"):
        cleaned["mrn"] = _next_mrn(user)
    elif Patient.objects.filter(organization_id=user.org_id, mrn=cleaned["mrn"]).exists():
        raise PatientValidationError({"mrn": f"{cleaned['mrn']} is already used by another patient"})
    patient = Patient(organization_id=user.org_id, created_by=user, updated_by=user, **cleaned)
    _set_search_keys(patient)
    try:
        with transaction.atomic():
            patient.save()
    except IntegrityError:
        raise PatientValidationError(
            {"mrn": f"{cleaned['mrn']} is already used by another patient"}
        ) from None
    after = _snapshot(patient)
    if overridden:
        after[NOT_A_DUPLICATE_FIELD] = not_a_duplicate_reason.strip()
        after["possible_duplicates"] = [str(p.pk) for p in overridden]
    notes = ["registered despite possible duplicates"] if overridden else []
    if patient.age_range_reason:
        after[OUTSIDE_AGE_RANGE_FIELD] = patient.age_range_reason
        notes.append(f"registered outside the clinic's age range ({age_range().describe()})")
    audit.record(
        user=user,
        action=Action.ADD,
        category=CATEGORY,
        patient=patient,
        object_type="Patient",
        object_id=patient.pk,
        after=after,
        request=request,
        detail="; ".join(notes),
    )
    return patient


def update_patient(
    *,
    user: User,
    patient: Patient,
    data: dict[str, Any],
    expected_version: int | None,
    not_a_duplicate_reason: str = "",
    outside_age_range_reason: str = "",
    request: HttpRequest | None = None,
) -> Patient:
    """Apply a partial change. ``expected_version`` guards against overwriting a colleague's edit. A change
    of name or birth date that makes the record look like another patient's is held back as at
    registration (PossibleDuplicate) unless ``not_a_duplicate_reason`` says why; the reason is audited."""
    today = patient.site.today()
    cleaned = _clean(user, data, partial=True, today=today)
    if cleaned.get("date_of_birth", patient.date_of_birth) != patient.date_of_birth:
        # A corrected birth date is checked against the age range as at registration.
        cleaned["age_range_reason"] = _age_check(cleaned["date_of_birth"], outside_age_range_reason, today)
    if "mrn" in cleaned and not cleaned["mrn"]:
        raise PatientValidationError({"mrn": "is required"})
    if cleaned.get("mrn") and cleaned["mrn"] != patient.mrn:
        if Patient.objects.filter(organization_id=patient.organization_id, mrn=cleaned["mrn"]).exists():
            raise PatientValidationError({"mrn": f"{cleaned['mrn']} is already used by another patient"})
    identity = ("given_name", "family_name", "date_of_birth")
    overridden: list[Patient] = []
    if any(name in cleaned and cleaned[name] != getattr(patient, name) for name in identity):
        proposed = {name: cleaned.get(name, getattr(patient, name)) for name in identity}
        overridden = _duplicate_check(user, proposed, not_a_duplicate_reason, request, exclude=patient)
    before = _snapshot(patient)
    for name, value in cleaned.items():
        setattr(patient, name, value)
    _set_search_keys(patient)
    after = _snapshot(patient)
    changed_before = {k: v for k, v in before.items() if after[k] != v}
    changed_after = {k: after[k] for k in changed_before}
    if not changed_after:
        return patient
    version = expected_version if expected_version is not None else patient.version
    fields = {name: getattr(patient, name) for name in cleaned}
    updated = Patient.objects.filter(pk=patient.pk, version=version).update(
        **fields,
        given_norm=patient.given_norm,
        family_norm=patient.family_norm,
        mrn_key=patient.mrn_key,
        mrn_key_reversed=patient.mrn_key_reversed,
        version=version + 1,
        updated_by=user,
        updated_at=timezone.now(),
    )
    if updated != 1:
        current = Patient.objects.get(pk=patient.pk)
        raise PatientConflict(current)
    patient.version = version + 1
    if overridden:
        changed_after[NOT_A_DUPLICATE_FIELD] = not_a_duplicate_reason.strip()
        changed_after["possible_duplicates"] = [str(p.pk) for p in overridden]
    if cleaned.get("age_range_reason"):
        changed_after[OUTSIDE_AGE_RANGE_FIELD] = cleaned["age_range_reason"]
    audit.record(
        user=user,
        action=Action.CHANGE,
        category=CATEGORY,
        patient=patient,
        object_type="Patient",
        object_id=patient.pk,
        before=changed_before,
        after=changed_after,
        request=request,
        detail="changed despite possible duplicates" if overridden else "",
    )
    return patient


def body_size(patient: Patient) -> body.BodySize | None:
    if patient.weight_kg is None or patient.height_cm is None:
        return None
    sex = body.Sex(patient.sex) if patient.sex in {s.value for s in body.Sex} else None
    return body.body_size(weight_kg=float(patient.weight_kg), height_cm=float(patient.height_cm), sex=sex)


def open_break_glass(
    *, user: User, patient: Patient, reason: str, request: HttpRequest | None = None
) -> BreakGlassGrant:
    """Emergency access to a patient outside the user's sites: alerts every admin and is audited."""
    from ketaclinic.core.models import Notification

    if not settings.KETACLINIC_BREAK_GLASS_ENABLED:
        raise PatientError("Break-glass access is switched off at this clinic.")
    if not user.break_glass_allowed:
        raise PatientError("Your account is not set up for break-glass access; ask an administrator.")
    if len(reason.strip()) < 10:
        raise PatientValidationError({"reason": "describe the emergency in at least 10 characters"})
    if patient.organization_id != user.organization_id:
        raise PatientNotFound("No such patient.")
    now = timezone.now()
    grant = BreakGlassGrant.objects.create(
        organization_id=user.organization_id,
        user=user,
        patient=patient,
        reason=reason.strip(),
        started_at=now,
        expires_at=now + timedelta(minutes=settings.KETACLINIC_BREAK_GLASS_MINUTES),
    )
    for admin in User.objects.filter(organization_id=user.organization_id, role=ADMIN, is_active=True):
        Notification.objects.create(
            organization_id=user.organization_id,
            recipient=admin,
            kind="break-glass",
            message=f"{user.display_name} used break-glass access to a patient record: {reason.strip()[:200]}",
            link="/audit/",
        )
    audit.record(
        user=user,
        action=Action.QUERY,
        category="break-glass",
        patient=patient,
        object_type="BreakGlassGrant",
        object_id=grant.pk,
        after={"reason": grant.reason, "expires_at": grant.expires_at.isoformat()},
        request=request,
        detail="break-glass access opened",
    )
    return grant
