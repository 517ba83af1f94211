"""REMS Patient Monitoring Form: completeness, rule checks, due date and assembly; label AE terms."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from ketaclinic.clinical.adverse_events import (
    LABEL_ADVERSE_REACTIONS,
    AeSeriousness,
    AeSeverity,
    find_term,
)
from ketaclinic.clinical.rems import (
    BloodPressure,
    ConcomitantMedications,
    FormVersion,
    MonitoringHcp,
    PatientMonitoringForm,
    RemsDose,
    RemsPatient,
    SubmissionStatus,
    TreatmentSetting,
    assemble_form,
    check_form,
    dose_choice,
    form_blood_pressures,
    is_overdue,
    missing_fields,
    rule_violations,
    sedation_observed,
    submission_due_date,
    submission_status,
)
from ketaclinic.clinical.vitals import VitalReading

T0 = datetime(2025, 3, 3, 14, 0, tzinfo=UTC)
PATIENT = RemsPatient(
    first_name="Ann", middle_initial="B", last_name="Lee", birthdate=date(1980, 5, 1), sex="F",
    first_treatment=False, enrolled=True,
)  # fmt: skip
MEDS = ConcomitantMedications(
    benzodiazepines=False,
    non_benzodiazepine_sedative_hypnotics=False,
    psychostimulants=True,
    maois=False,
    other_sedation_dissociation_respiratory_or_bp_meds=False,
)
HCP = MonitoringHcp(first_name="Sam", last_name="Ortiz", phone="555-0100", email="sam@clinic.example")
SETTING = TreatmentSetting(
    name="Calm Clinic", address1="1 Main St", city="Springfield", state="IL", zip_code="62701"
)
COMPLETE = PatientMonitoringForm(
    patient=PATIENT,
    concomitant_medications=MEDS,
    monitoring_hcp=HCP,
    setting=SETTING,
    treatment_date=date(2025, 3, 3),
    dose=RemsDose.MG_56,
    lot_number="LOT123",
    total_monitoring_minutes=125,
    minutes_until_ready=90,
    vitals_acceptable_before_administration=True,
    vitals_acceptable_before_completion=True,
    bp_before_administration=BloodPressure(sbp_mmhg=138, dbp_mmhg=86),
    bp_40_min=BloodPressure(sbp_mmhg=150, dbp_mmhg=92),
    bp_before_completion=BloodPressure(sbp_mmhg=130, dbp_mmhg=82),
    sedation=True,
    dissociation=True,
    respiratory_depression=False,
    serious_adverse_event=False,
)


# --------------------------------------------------------------------------- completeness


def test_complete_form_has_nothing_missing() -> None:
    check = check_form(COMPLETE)
    assert check.missing == () and check.violations == () and check.complete


def test_empty_form_lists_every_required_field() -> None:
    missing = missing_fields(PatientMonitoringForm())
    # Patient 6 (MI optional) + meds 5 + HCP 4 + setting 5 (address 2 optional)
    # + session 5 (date, dose, lot, total, ready) + vitals Y/N 2 + BP 3 + AE 4 = 34.
    assert len(missing) == 34
    assert missing[:3] == ["patient.first_name", "patient.last_name", "patient.birthdate"]
    assert {"bp_40_min", "lot_number", "respiratory_depression", "minutes_until_ready"} <= set(missing)
    assert "patient.middle_initial" not in missing and "setting.address2" not in missing


def test_older_form_version_skips_newer_questions() -> None:
    missing = missing_fields(PatientMonitoringForm(), version=FormVersion.V2021_11)
    assert len(missing) == 31  # 34 − first treatment, enrolled, other meds
    assert "patient.enrolled" not in missing


def test_blank_strings_count_as_missing() -> None:
    form = replace(COMPLETE, lot_number="  ", monitoring_hcp=replace(HCP, email=""))
    assert missing_fields(form) == ["monitoring_hcp.email", "lot_number"]


def test_other_dose_needs_its_mg() -> None:
    assert missing_fields(replace(COMPLETE, dose=RemsDose.OTHER)) == ["dose_other_mg"]
    assert missing_fields(replace(COMPLETE, dose=RemsDose.OTHER, dose_other_mg=28)) == []


# --------------------------------------------------------------------------- rule violations


def test_total_time_must_be_at_least_120() -> None:
    assert rule_violations(replace(COMPLETE, total_monitoring_minutes=120, minutes_until_ready=90)) == []
    assert rule_violations(replace(COMPLETE, total_monitoring_minutes=119, minutes_until_ready=90)) == [
        "Total monitoring time 119 min is under the required 120 min"
    ]


def test_ready_minutes_must_fit_the_total() -> None:
    assert rule_violations(replace(COMPLETE, minutes_until_ready=125)) == []
    assert rule_violations(replace(COMPLETE, minutes_until_ready=126)) == [
        "Minutes until ready (126) cannot exceed the total monitoring time (125)"
    ]
    assert rule_violations(replace(COMPLETE, minutes_until_ready=-1)) == [
        "Minutes until ready (-1) cannot be negative"
    ]


def test_other_violations_are_all_listed() -> None:
    form = replace(
        COMPLETE,
        dose_other_mg=28,  # but dose is 56
        bp_40_min=BloodPressure(sbp_mmhg=90, dbp_mmhg=90),
        monitoring_hcp=replace(HCP, email="sam at clinic"),
        setting=replace(SETTING, zip_code="6270"),
    )
    assert rule_violations(form) == [
        "An 'other' dose in mg is given but the dose is not marked 'other'",
        "BP at 40 min 90/90: diastolic must be below systolic",
        "Monitoring HCP email 'sam at clinic' is not an email address",
        "ZIP '6270' must be 5 digits (or 5+4)",
    ]
    assert not check_form(form).complete
    assert rule_violations(replace(COMPLETE, setting=replace(SETTING, zip_code="62701-1234"))) == []
    assert rule_violations(replace(COMPLETE, dose=RemsDose.OTHER, dose_other_mg=0)) == [
        "Other dose 0 mg must be above 0"
    ]


# --------------------------------------------------------------------------- due date


def test_due_date_is_treatment_date_plus_7() -> None:
    assert submission_due_date(date(2025, 3, 3)) == date(2025, 3, 10)
    assert submission_due_date(date(2025, 2, 25)) == date(2025, 3, 4)  # across month end (28-day Feb)


@pytest.mark.parametrize(
    ("submitted", "today", "status", "late"),
    [
        (None, date(2025, 3, 10), SubmissionStatus.NOT_YET_DUE, False),  # due day itself is fine
        (None, date(2025, 3, 11), SubmissionStatus.OVERDUE, True),
        (date(2025, 3, 10), date(2025, 3, 20), SubmissionStatus.SUBMITTED, False),
        (date(2025, 3, 11), date(2025, 3, 20), SubmissionStatus.SUBMITTED_LATE, False),
    ],
)
def test_submission_status(submitted: date | None, today: date, status: SubmissionStatus, late: bool) -> None:
    treated = date(2025, 3, 3)
    assert submission_status(treatment_date=treated, submitted_on=submitted, today=today) is status
    assert is_overdue(treatment_date=treated, submitted_on=submitted, today=today) is late


# --------------------------------------------------------------------------- assembly


def r(minute: int, sbp: int | None, dbp: int | None, moaas: int | None = None) -> VitalReading:
    return VitalReading(taken_at=T0 + timedelta(minutes=minute), sbp_mmhg=sbp, dbp_mmhg=dbp, moaas=moaas)


READINGS = [
    r(-10, 135, 85, moaas=5),
    r(-3, 138, 86, moaas=5),  # last before first device
    r(20, None, None, moaas=4),  # MOAA/S-only check: sedation
    r(38, 150, 92),  # 2 min from 40 -> the 40-min BP
    r(46, 148, 90),  # 6 min from 40: outside the 5-min window
    r(118, 130, 82),  # last before end of monitoring (125)
    r(130, 128, 80),  # after monitoring ended: ignored
]


def test_form_blood_pressures() -> None:
    before, at_40, completion = form_blood_pressures(
        readings=READINGS, first_device_at=T0, monitoring_ended_at=T0 + timedelta(minutes=125)
    )
    assert before == BloodPressure(sbp_mmhg=138, dbp_mmhg=86)
    assert at_40 == BloodPressure(sbp_mmhg=150, dbp_mmhg=92)
    assert completion == BloodPressure(sbp_mmhg=130, dbp_mmhg=82)
    # Without a reading within ±5 min of 40, the nurse must fill it in.
    _, none_40, _ = form_blood_pressures(
        readings=[r(-3, 138, 86), r(46, 148, 90)],
        first_device_at=T0,
        monitoring_ended_at=T0 + timedelta(minutes=125),
    )
    assert none_40 is None


def test_sedation_observed() -> None:
    assert sedation_observed(readings=READINGS, first_device_at=T0) is True  # 4 < 5
    assert (
        sedation_observed(readings=[r(-3, 1, 0, moaas=5), r(20, 1, 0, moaas=5)], first_device_at=T0) is False
    )
    assert sedation_observed(readings=[r(20, 1, 0, moaas=4)], first_device_at=T0) is None


def test_dose_choice() -> None:
    assert dose_choice(56) == (RemsDose.MG_56, None)
    assert dose_choice(84) == (RemsDose.MG_84, None)
    assert dose_choice(28) == (RemsDose.OTHER, 28)


def assembled(**changes: object) -> PatientMonitoringForm:
    args: dict[str, object] = {
        "patient": PATIENT,
        "concomitant_medications": MEDS,
        "monitoring_hcp": HCP,
        "setting": SETTING,
        "treatment_date": date(2025, 3, 3),
        "dose_mg": 56,
        "lot_number": "LOT123",
        "first_device_at": T0,
        "monitoring_ended_at": T0 + timedelta(minutes=125, seconds=40),
        "ready_at": T0 + timedelta(minutes=90),
        "readings": READINGS,
        "vitals_acceptable_before_administration": True,
        "vitals_acceptable_before_completion": True,
        "dissociation": True,
        "respiratory_depression": False,
        "serious_adverse_event": False,
        **changes,
    }
    return assemble_form(**args)  # type: ignore[arg-type]


def test_assemble_form_matches_the_hand_filled_form() -> None:
    # 125 min 40 s -> 125 whole minutes; ready at 90 min; sedation from MOAA/S 5 -> 4.
    assert assembled() == COMPLETE
    assert check_form(assembled()).complete


def test_assemble_form_explicit_sedation_and_missing_ready() -> None:
    form = assembled(sedation=False, ready_at=None, dose_mg=28)
    assert form.sedation is False and form.dose is RemsDose.OTHER and form.dose_other_mg == 28
    assert missing_fields(form) == ["minutes_until_ready"]


def test_assembled_short_session_is_flagged() -> None:
    form = assembled(monitoring_ended_at=T0 + timedelta(minutes=110), ready_at=T0 + timedelta(minutes=60))
    assert rule_violations(form) == ["Total monitoring time 110 min is under the required 120 min"]


# --------------------------------------------------------------------------- label adverse reactions


def test_label_adverse_reaction_table() -> None:
    assert len(LABEL_ADVERSE_REACTIONS) == 22
    dissociation = find_term(" dissociation ")
    assert dissociation is not None
    assert (dissociation.esketamine_pct, dissociation.placebo_pct) == (41, 9)
    tachy = find_term("Tachycardia")
    assert tachy is not None and (tachy.esketamine_pct, tachy.placebo_pct) == (2, 0.5)
    assert find_term("Blood pressure increased") is not None and find_term("Seizure") is None
    assert all("§2.6" in t.source for t in LABEL_ADVERSE_REACTIONS)
    pcts = [t.esketamine_pct for t in LABEL_ADVERSE_REACTIONS]
    assert pcts == sorted(pcts, reverse=True)


def test_ae_grading_enums() -> None:
    assert [s.value for s in AeSeverity] == ["mild", "moderate", "severe"]
    assert [s.value for s in AeSeriousness] == ["non_serious", "serious"]
