"""Consent forms say what clinical.md §11 asks, and a signed consent covers only its drug and route while it is
neither expired nor withdrawn (pure: no database)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from ketaclinic.clinical import consent as rules
from ketaclinic.clinical.consent import (
    DEFAULT_VALIDITY,
    FormText,
    SectionKey,
    SignAgain,
    SignedConsent,
    builtin_form,
    builtin_forms,
    consent_standing,
    fingerprint,
    form_problems,
    percentages,
)
from ketaclinic.clinical.gate import GateContext, GateItemKey, GateRequirements, GateStatus, evaluate_gate

TODAY = date(2026, 12, 7)


def with_text(form: FormText, key: SectionKey, text: str, **changes: str) -> FormText:
    sections = tuple(replace(s, text=text, **changes) if s.key == key else s for s in form.sections)
    return replace(form, sections=sections)


def without(form: FormText, key: SectionKey) -> FormText:
    return replace(form, sections=tuple(s for s in form.sections if s.key != key))


def problems(form: FormText) -> dict[str, str]:
    found: dict[str, str] = {}
    for p in form_problems(form):
        found[p.section] = f"{found.get(p.section, '')} {p.message}".strip()
    return found


# --- the built-in forms -------------------------------------------------------------------------------


@pytest.mark.parametrize("form", builtin_forms(), ids=lambda f: f"{f.drug}-{f.route}")
def test_every_built_in_form_says_what_section_11_asks_with_sources(form: FormText) -> None:
    assert form_problems(form) == ()
    keys = {s.key for s in form.sections}
    assert {str(r.key) for r in rules.required_sections(form.drug)} <= keys
    assert all("clinical.md" in s.source for s in form.sections)
    benefit = form.section(SectionKey.BENEFIT)
    assert benefit is not None
    figures = percentages(benefit.text)
    assert figures and max(figures) <= 55 and any(45 <= f <= 55 for f in figures)


def test_the_four_forms_are_one_per_drug_and_route() -> None:
    assert [(f.drug, f.route) for f in builtin_forms()] == [
        ("esketamine", "intranasal"),
        ("ketamine", "iv"),
        ("ketamine", "im"),
        ("ketamine", "sublingual"),
    ]


@pytest.mark.parametrize("route", ["iv", "im", "sublingual"])
def test_racemic_ketamine_forms_say_it_is_off_label_and_relapse_comes_within_weeks(route: str) -> None:
    form = builtin_form("ketamine", route)
    off_label = form.section(SectionKey.OFF_LABEL)
    assert off_label is not None and "not FDA-approved" in off_label.text and "off-label" in off_label.text
    relapse = form.section(SectionKey.RELAPSE)
    assert relapse is not None and "within weeks" in relapse.text
    risks = form.section(SectionKey.RISKS)
    assert risks is not None and "cystitis" in risks.text and "abuse potential" in risks.text


def test_the_esketamine_form_keeps_the_label_rules() -> None:
    form = builtin_form("esketamine", "intranasal")
    assert form.section(SectionKey.OFF_LABEL) is None  # FDA-approved: no off-label section needed
    monitoring = form.section(SectionKey.MONITORING)
    assert monitoring is not None
    assert "at least 2 hours" in monitoring.text and "next day after a restful sleep" in monitoring.text
    assert "REMS" in (form.section(SectionKey.TREATMENT) or monitoring).text


# --- what a clinic's own version must still say --------------------------------------------------------


def test_a_benefit_quoting_the_open_label_70_percent_is_refused() -> None:
    iv = builtin_form("ketamine", "iv")
    found = problems(with_text(iv, SectionKey.BENEFIT, "Up to 70 % of patients respond after 6 infusions."))
    assert "quotes 70 %" in found["benefit"] and "about 45–55 %" in found["benefit"]
    assert "no short-term response figure between 45 and 55 %" in found["benefit"]
    source = next(p.source for p in form_problems(with_text(iv, SectionKey.BENEFIT, "70 % respond.")))
    assert "§9.3" in source


def test_a_benefit_with_a_controlled_figure_passes_and_a_range_counts_both_ends() -> None:
    iv = builtin_form("ketamine", "iv")
    ok = "About half respond in the short term: 45–55 % in controlled studies; remission 13–46 %."
    assert "benefit" not in problems(with_text(iv, SectionKey.BENEFIT, ok))
    bad = "In controlled studies 45–60 % respond in the short term, which is a lot of people."
    assert "quotes 60 %" in problems(with_text(iv, SectionKey.BENEFIT, bad))["benefit"]


def test_a_racemic_ketamine_form_without_the_off_label_statement_is_refused() -> None:
    found = problems(without(builtin_form("ketamine", "im"), SectionKey.OFF_LABEL))
    assert "is missing" in found["off_label"] and "not FDA-approved" in found["off_label"]
    vague = "Ketamine has been used for many years in hospitals and clinics around the world."
    found = problems(with_text(builtin_form("ketamine", "im"), SectionKey.OFF_LABEL, vague))
    assert "not FDA-approved (off-label)" in found["off_label"]


def test_risks_must_name_each_required_risk() -> None:
    text = "You may feel detached (dissociation), sick (nausea) and sleepy (sedation); blood pressure rises."
    found = problems(with_text(builtin_form("ketamine", "iv"), SectionKey.RISKS, text))
    assert found["risks"] == "does not mention bladder problems (cystitis), abuse potential"


def test_monitoring_must_cover_the_escort_and_driving_and_stopping_any_time() -> None:
    iv = builtin_form("ketamine", "iv")
    found = problems(
        with_text(
            iv, SectionKey.MONITORING, "A nurse checks your blood pressure every 15 minutes until you leave."
        )
    )
    assert found["monitoring"] == "does not mention the escort home, driving"
    found = problems(
        with_text(iv, SectionKey.STOPPING, "You may stop the treatment if you tell the nurse first.")
    )
    assert found["stopping"] == "does not mention at any time"


def test_the_treatment_section_names_the_drug_and_the_route_of_this_form() -> None:
    im = builtin_form("ketamine", "im")
    text = "Ketamine given as a slow infusion into a vein over 40 minutes, at a dose your prescriber sets."
    assert problems(with_text(im, SectionKey.TREATMENT, text))["treatment"] == (
        "does not mention the route (intramuscular injection)"
    )
    esk_words = "Esketamine given as an infusion into a vein over 40 minutes, at a dose your prescriber sets."
    assert (
        "the drug (ketamine)"
        in problems(with_text(builtin_form("ketamine", "iv"), SectionKey.TREATMENT, esk_words))["treatment"]
    )


def test_missing_sections_short_sections_sources_and_limits_are_named() -> None:
    iv = builtin_form("ketamine", "iv")
    assert "is missing" in problems(without(iv, SectionKey.ALTERNATIVES))["alternatives"]
    assert (
        "says too little"
        in problems(with_text(iv, SectionKey.ALTERNATIVES, "See the leaflet."))["alternatives"]
    )
    assert (
        "needs its source"
        in problems(with_text(iv, SectionKey.QUESTIONS, "Ask us anything.", source="x"))["questions"]
    )
    long = problems(with_text(iv, SectionKey.QUESTIONS, "Ask us. " * 700))["questions"]
    assert "is 5599 characters, more than 5000: put the detail in a leaflet" in long
    assert problems(replace(iv, title=" "))["title"] == "the form needs a title"
    assert problems(replace(iv, route="oral"))["form"] == "no consent form for ketamine by oral"


def test_the_fingerprint_changes_with_any_word() -> None:
    iv = builtin_form("ketamine", "iv")
    assert fingerprint(iv) == fingerprint(builtin_form("ketamine", "iv"))
    changed = with_text(
        iv, SectionKey.QUESTIONS, "Please ask the nurse or your prescriber before you sign, anything."
    )
    assert fingerprint(changed) != fingerprint(iv)


# --- does the signed consent cover this session? -------------------------------------------------------

SIGNED = SignedConsent(
    route="iv",
    form_title="Consent to ketamine (racemic) treatment by intravenous infusion",
    version=2,
    signed_on=date(2026, 11, 23),
    expires_on=date(2027, 11, 23),
    how="signed on the clinic tablet as 'Ann Example'",
    witness="Nurse One",
)


def test_a_current_consent_shows_its_version_signing_date_age_witness_and_expiry() -> None:
    standing = consent_standing(drug="ketamine", route="iv", on_file=SIGNED, today=TODAY)
    assert standing.current
    assert standing.reason == (
        "Consent current: Consent to ketamine (racemic) treatment by intravenous infusion, version 2, signed "
        "2026-11-23 (14 days ago); signed on the clinic tablet as 'Ann Example'; witnessed by Nurse One; valid "
        "until 2027-11-23 (clinic policy 365 days, unconfirmed)"
    )
    assert "§11" in standing.source and not standing.confirmed  # the validity period is a clinic default


def test_no_consent_names_the_routes_on_file_since_an_iv_consent_does_not_cover_im() -> None:
    standing = consent_standing(drug="ketamine", route="im", on_file=None, today=TODAY, other_routes=["iv"])
    assert not standing.current
    assert standing.reason == (
        "No signed consent for Ketamine (racemic) by intramuscular injection on file (on file: ketamine by "
        "intravenous infusion — each route needs its own consent): the patient signs the current form before any dose"
    )
    unsigned = consent_standing(
        drug="ketamine", route="iv", on_file=None, today=TODAY, unsigned_record_on=date(2026, 1, 5)
    )
    assert "recorded on 2026-01-05 has no signed form and does not count" in unsigned.reason


def test_expired_withdrawn_and_future_consents_fail_and_the_last_day_still_counts() -> None:
    last_day = consent_standing(
        drug="ketamine", route="iv", on_file=replace(SIGNED, expires_on=TODAY), today=TODAY
    )
    assert last_day.current
    expired = consent_standing(
        drug="ketamine", route="iv", on_file=replace(SIGNED, expires_on=date(2026, 12, 6)), today=TODAY
    )
    assert not expired.current and expired.reason.startswith("Consent expired on 2026-12-06")
    withdrawn = consent_standing(
        drug="ketamine",
        route="iv",
        on_file=replace(SIGNED, withdrawn_on=date(2026, 12, 1), withdrawal_reason="Patient wants to stop"),
        today=TODAY,
    )
    assert not withdrawn.current
    assert withdrawn.reason.startswith("Consent withdrawn on 2026-12-01: Patient wants to stop.")
    future = consent_standing(
        drug="ketamine", route="iv", on_file=replace(SIGNED, signed_on=date(2026, 12, 8)), today=TODAY
    )
    assert not future.current and "in the future" in future.reason


def test_a_newer_version_that_every_patient_signs_again_closes_the_gate_for_older_signatures() -> None:
    again = SignAgain(version=3, published_on=date(2026, 12, 1), note="New bladder-risk wording")
    standing = consent_standing(drug="ketamine", route="iv", on_file=SIGNED, today=TODAY, sign_again=again)
    assert not standing.current
    assert (
        "version 3 (published 2026-12-01) must be signed before the next dose: New bladder-risk wording"
        in (standing.reason)
    )
    assert consent_standing(
        drug="ketamine", route="iv", on_file=replace(SIGNED, version=3), today=TODAY, sign_again=again
    ).current


def test_the_gate_shows_the_standing_and_consent_is_never_overridable() -> None:
    def consent_item(standing: rules.ConsentStanding) -> object:
        ctx = GateContext(
            today=TODAY,
            consent_current=standing.current,
            consent_signed_on=None,
            screening_signed_on=TODAY,
            consent=standing,
        )
        items = evaluate_gate(context=ctx, requirements=GateRequirements(screening_max_age_days=30))
        return next(i for i in items if i.key == GateItemKey.CONSENT)

    ok = consent_standing(drug="ketamine", route="iv", on_file=SIGNED, today=TODAY)
    item = consent_item(ok)
    assert item.status is GateStatus.PASS and "version 2" in item.reason and not item.overridable  # type: ignore[attr-defined]
    none = consent_standing(drug="ketamine", route="iv", on_file=None, today=TODAY)
    item = consent_item(none)
    assert item.status is GateStatus.FAIL and not item.overridable  # type: ignore[attr-defined]
    assert DEFAULT_VALIDITY.days == 365 and not DEFAULT_VALIDITY.confirmed
