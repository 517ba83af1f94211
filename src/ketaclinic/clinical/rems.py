"""SPRAVATO REMS Patient Monitoring Form: assembly, completeness and due date (pure: no Django, no I/O).

Fields follow clinical.md §2.4 (form version 11/2021 plus the newer version's additions: first
treatment? / enrolled? and "other medications causing sedation, dissociation, respiratory depression or
BP change, incl. opioids"). The newer form's exact AE wording after "Sedati…" is not in the reference
[U]; the respiratory-depression question is modelled from the REMS goals (§2.4).

Rules: total time from the first device to the end of monitoring must be ≥120 min (§2.4, "must be
≥2 h"); the form is due within 7 days of the session (§2.4), i.e. by treatment date + 7 days.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, is_dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Final

from ketaclinic.clinical.vitals import ESKETAMINE_CADENCE, VitalReading, minutes_between

REMS_MIN_MONITORING_MIN: Final = 120  # clinical.md §2.4 (PMF: "must be ≥2 h"); §2.3 label boxed warning
REMS_SUBMIT_WITHIN_DAYS: Final = 7  # clinical.md §2.4 (submit PMF after every session within 7 days)
BP_40_MIN: Final = 40  # clinical.md §2.3, §2.4 (BP ~40 min post-dose; PMF "40 min post")


class FormVersion(StrEnum):
    V2021_11 = "2021-11"
    NEWER = "newer"  # adds first treatment / enrolled and the broader concomitant-medication question


class RemsDose(StrEnum):
    MG_56 = "56"
    MG_84 = "84"
    OTHER = "other"


class SubmissionStatus(StrEnum):
    NOT_YET_DUE = "not_yet_due"
    OVERDUE = "overdue"
    SUBMITTED = "submitted"
    SUBMITTED_LATE = "submitted_late"


@dataclass(frozen=True, slots=True, kw_only=True)
class BloodPressure:
    sbp_mmhg: int
    dbp_mmhg: int


@dataclass(frozen=True, slots=True, kw_only=True)
class RemsPatient:
    first_name: str | None = None
    middle_initial: str | None = None  # optional on the form
    last_name: str | None = None
    birthdate: date | None = None
    sex: str | None = None
    first_treatment: bool | None = None  # newer form
    enrolled: bool | None = None  # newer form


@dataclass(frozen=True, slots=True, kw_only=True)
class ConcomitantMedications:
    benzodiazepines: bool | None = None
    non_benzodiazepine_sedative_hypnotics: bool | None = None
    psychostimulants: bool | None = None
    maois: bool | None = None
    other_sedation_dissociation_respiratory_or_bp_meds: bool | None = None  # newer form, incl. opioids


@dataclass(frozen=True, slots=True, kw_only=True)
class MonitoringHcp:
    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = None
    email: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TreatmentSetting:
    name: str | None = None
    address1: str | None = None
    address2: str | None = None  # optional on the form
    city: str | None = None
    state: str | None = None
    zip_code: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PatientMonitoringForm:
    patient: RemsPatient = field(default_factory=RemsPatient)
    concomitant_medications: ConcomitantMedications = field(default_factory=ConcomitantMedications)
    monitoring_hcp: MonitoringHcp = field(default_factory=MonitoringHcp)
    setting: TreatmentSetting = field(default_factory=TreatmentSetting)
    treatment_date: date | None = None
    dose: RemsDose | None = None
    dose_other_mg: int | None = None
    lot_number: str | None = None
    total_monitoring_minutes: int | None = None  # first device to end of monitoring
    minutes_until_ready: int | None = None  # REMS question: ready to leave if there were no 2-h minimum
    vitals_acceptable_before_administration: bool | None = None
    vitals_acceptable_before_completion: bool | None = None
    bp_before_administration: BloodPressure | None = None
    bp_40_min: BloodPressure | None = None
    bp_before_completion: BloodPressure | None = None
    sedation: bool | None = None
    dissociation: bool | None = None
    respiratory_depression: bool | None = None
    serious_adverse_event: bool | None = None


_OPTIONAL: Final = frozenset({"patient.middle_initial", "setting.address2", "dose_other_mg"})
_NEWER_ONLY: Final = frozenset(
    {
        "patient.first_treatment",
        "patient.enrolled",
        "concomitant_medications.other_sedation_dissociation_respiratory_or_bp_meds",
    }
)


def _leaves(obj: object, prefix: str = "") -> list[tuple[str, object]]:
    out: list[tuple[str, object]] = []
    for f in fields(obj):  # type: ignore[arg-type]  # only called on the form's dataclasses
        value = getattr(obj, f.name)
        name = f"{prefix}{f.name}"
        if is_dataclass(value) and not isinstance(value, BloodPressure):
            out.extend(_leaves(value, f"{name}."))
        else:
            out.append((name, value))
    return out


def missing_fields(form: PatientMonitoringForm, *, version: FormVersion = FormVersion.NEWER) -> list[str]:
    """Dotted names of required fields still empty (``patient.first_name``, ``bp_40_min`` …)."""
    missing = []
    for name, value in _leaves(form):
        if name in _OPTIONAL or (version is FormVersion.V2021_11 and name in _NEWER_ONLY):
            continue
        if value is None or (isinstance(value, str) and not value.strip()):
            missing.append(name)
    if form.dose is RemsDose.OTHER and form.dose_other_mg is None:
        missing.append("dose_other_mg")
    return missing


_EMAIL_RE: Final = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_ZIP_RE: Final = re.compile(r"^\d{5}(-\d{4})?$")


def rule_violations(form: PatientMonitoringForm) -> list[str]:
    """Filled-in values that break a REMS rule or contradict each other, as messages for staff."""
    out: list[str] = []
    total, ready = form.total_monitoring_minutes, form.minutes_until_ready
    if total is not None and total < REMS_MIN_MONITORING_MIN:
        out.append(f"Total monitoring time {total} min is under the required {REMS_MIN_MONITORING_MIN} min")
    if ready is not None and ready < 0:
        out.append(f"Minutes until ready ({ready}) cannot be negative")
    if ready is not None and total is not None and ready > total:
        out.append(f"Minutes until ready ({ready}) cannot exceed the total monitoring time ({total})")
    if form.dose is RemsDose.OTHER and form.dose_other_mg is not None and form.dose_other_mg <= 0:
        out.append(f"Other dose {form.dose_other_mg} mg must be above 0")
    if form.dose is not RemsDose.OTHER and form.dose_other_mg is not None:
        out.append("An 'other' dose in mg is given but the dose is not marked 'other'")
    for label, bp in (
        ("before administration", form.bp_before_administration),
        ("at 40 min", form.bp_40_min),
        ("before completion", form.bp_before_completion),
    ):
        if bp is not None and bp.dbp_mmhg >= bp.sbp_mmhg:
            out.append(f"BP {label} {bp.sbp_mmhg}/{bp.dbp_mmhg}: diastolic must be below systolic")
    email = form.monitoring_hcp.email
    if email and not _EMAIL_RE.match(email.strip()):
        out.append(f"Monitoring HCP email '{email}' is not an email address")
    zip_code = form.setting.zip_code
    if zip_code and not _ZIP_RE.match(zip_code.strip()):
        out.append(f"ZIP '{zip_code}' must be 5 digits (or 5+4)")
    return out


@dataclass(frozen=True, slots=True, kw_only=True)
class FormCheck:
    missing: tuple[str, ...]
    violations: tuple[str, ...]

    @property
    def complete(self) -> bool:
        return not self.missing and not self.violations


def check_form(form: PatientMonitoringForm, *, version: FormVersion = FormVersion.NEWER) -> FormCheck:
    return FormCheck(
        missing=tuple(missing_fields(form, version=version)), violations=tuple(rule_violations(form))
    )


def submission_due_date(treatment_date: date) -> date:
    """Last day to submit: treatment date + 7 days (clinical.md §2.4)."""
    return treatment_date + timedelta(days=REMS_SUBMIT_WITHIN_DAYS)


def submission_status(*, treatment_date: date, submitted_on: date | None, today: date) -> SubmissionStatus:
    due = submission_due_date(treatment_date)
    if submitted_on is not None:
        return SubmissionStatus.SUBMITTED if submitted_on <= due else SubmissionStatus.SUBMITTED_LATE
    return SubmissionStatus.OVERDUE if today > due else SubmissionStatus.NOT_YET_DUE


def is_overdue(*, treatment_date: date, submitted_on: date | None, today: date) -> bool:
    """True when the form has not been submitted and the due date has passed (the due day itself is fine)."""
    status = submission_status(treatment_date=treatment_date, submitted_on=submitted_on, today=today)
    return status is SubmissionStatus.OVERDUE


def setting_certification(*, site_record: bool | None, answered: bool | None) -> bool | None:
    """Is the treatment setting certified in the SPRAVATO REMS (clinical.md §2.4: "outpatient setting must be
    certified")? From the site's record (kept by an administrator) and the answer given at the chair: a
    "no" from either stops (a lapsed certification the chair knows of, or a site recorded as not
    certified); the site's "yes" is enough without an answer; with no site record the chair's answer counts.
    None: nobody has said."""
    if site_record is False or answered is False:
        return False
    if site_record is True or answered is True:
        return True
    return None


# --------------------------------------------------------------------------- assembly from session data


def dose_choice(dose_mg: int) -> tuple[RemsDose, int | None]:
    """Map a dose in mg to the form's choice (56 / 84 / other + mg)."""
    if dose_mg == 56:
        return RemsDose.MG_56, None
    if dose_mg == 84:
        return RemsDose.MG_84, None
    return RemsDose.OTHER, dose_mg


def _bp(reading: VitalReading | None) -> BloodPressure | None:
    if reading is None or reading.sbp_mmhg is None or reading.dbp_mmhg is None:
        return None
    return BloodPressure(sbp_mmhg=reading.sbp_mmhg, dbp_mmhg=reading.dbp_mmhg)


def form_blood_pressures(
    *,
    readings: Sequence[VitalReading],
    first_device_at: datetime,
    monitoring_ended_at: datetime,
    window_min: int = ESKETAMINE_CADENCE.window_min,
) -> tuple[BloodPressure | None, BloodPressure | None, BloodPressure | None]:
    """(before administration, 40 min post, before completion) from the session's readings.

    Before administration = the last BP before the first device. 40 min = the BP closest to 40 min within
    ± ``window_min`` (the cadence window, an unconfirmed default); outside it the nurse fills it in.
    Before completion = the last post-dose BP at or before the end of monitoring.
    """
    with_bp = sorted((r for r in readings if _bp(r) is not None), key=lambda r: r.taken_at)
    before = [r for r in with_bp if r.taken_at < first_device_at]
    post = [r for r in with_bp if first_device_at <= r.taken_at <= monitoring_ended_at]
    target = first_device_at + timedelta(minutes=BP_40_MIN)
    near = [r for r in post if abs(r.taken_at - target) <= timedelta(minutes=window_min)]
    at_40 = min(near, key=lambda r: (abs(r.taken_at - target), r.taken_at), default=None)
    return _bp(before[-1] if before else None), _bp(at_40), _bp(post[-1] if post else None)


def sedation_observed(*, readings: Sequence[VitalReading], first_device_at: datetime) -> bool | None:
    """Any post-dose MOAA/S below the last pre-dose MOAA/S (clinical.md §8); None without the data."""
    pre = [r for r in readings if r.taken_at < first_device_at and r.moaas is not None]
    post = [r.moaas for r in readings if r.taken_at >= first_device_at and r.moaas is not None]
    if not pre or not post:
        return None
    base = max(pre, key=lambda r: r.taken_at).moaas
    assert base is not None
    return min(post) < base


def assemble_form(
    *,
    patient: RemsPatient,
    concomitant_medications: ConcomitantMedications,
    monitoring_hcp: MonitoringHcp,
    setting: TreatmentSetting,
    treatment_date: date,
    dose_mg: int,
    lot_number: str | None,
    first_device_at: datetime,
    monitoring_ended_at: datetime,
    ready_at: datetime | None,
    readings: Sequence[VitalReading],
    vitals_acceptable_before_administration: bool | None,
    vitals_acceptable_before_completion: bool | None,
    dissociation: bool | None,
    respiratory_depression: bool | None,
    serious_adverse_event: bool | None,
    sedation: bool | None = None,
) -> PatientMonitoringForm:
    """Fill the form from session data. ``ready_at`` comes from ``discharge.ready_time``.

    ``sedation`` defaults to what the MOAA/S readings show (any drop from pre-dose); pass it to answer
    explicitly. ``treatment_date`` is the session date in the site's time zone (the app knows it).
    """
    dose, other = dose_choice(dose_mg)
    before, at_40, completion = form_blood_pressures(
        readings=readings, first_device_at=first_device_at, monitoring_ended_at=monitoring_ended_at
    )
    return PatientMonitoringForm(
        patient=patient,
        concomitant_medications=concomitant_medications,
        monitoring_hcp=monitoring_hcp,
        setting=setting,
        treatment_date=treatment_date,
        dose=dose,
        dose_other_mg=other,
        lot_number=lot_number,
        total_monitoring_minutes=minutes_between(first_device_at, monitoring_ended_at),
        minutes_until_ready=None if ready_at is None else minutes_between(first_device_at, ready_at),
        vitals_acceptable_before_administration=vitals_acceptable_before_administration,
        vitals_acceptable_before_completion=vitals_acceptable_before_completion,
        bp_before_administration=before,
        bp_40_min=at_40,
        bp_before_completion=completion,
        sedation=sedation
        if sedation is not None
        else sedation_observed(readings=readings, first_device_at=first_device_at),
        dissociation=dissociation,
        respiratory_depression=respiratory_depression,
        serious_adverse_event=serious_adverse_event,
    )
