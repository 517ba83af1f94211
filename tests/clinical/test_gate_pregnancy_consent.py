"""The gate's pregnancy test and consent items show their age and refuse an old one (issue 14, *Why*: a
2-year-old negative pregnancy test and a 400-day-old consent passed the gate). Pregnancy: clinical.md §2.5,
§11 (interval: clinic policy, default within 7 days before the first session of a course, unconfirmed)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from ketaclinic.clinical.gate import (
    ChildbearingRecord,
    GateItem,
    GateItemKey,
    GateOverride,
    GateStatus,
    PregnancyTest,
    PregnancyTestScope,
    Requirement,
    blocking_items,
    evaluate_gate,
)
from ketaclinic.clinical.screening_model import Answer

from .test_gate import ESK, READY, TODAY

POLICY = Requirement(value=7, source="clinic policy: 7 days (clinical.md §11, unconfirmed)", confirmed=False)
BY_COURSE = replace(ESK, pregnancy_test=POLICY)
BY_SESSION = replace(BY_COURSE, pregnancy_test_scope=PregnancyTestScope.SESSION)
CAN = ChildbearingRecord(answer=Answer.YES, recorded="intake version 2", signed=True)
CANNOT = ChildbearingRecord(
    answer=Answer.NO, reason="Post-menopausal", recorded="intake version 2", signed=True
)
RENEW = Requirement(value=365, source="clinic policy: renewed every 365 days (unconfirmed)", confirmed=False)


def pregnancy(req: object = BY_COURSE, **changes: object) -> GateItem:
    context = replace(READY, **{"childbearing": CAN, **changes})  # type: ignore[arg-type]
    items = {i.key: i for i in evaluate_gate(context=context, requirements=req)}  # type: ignore[arg-type]
    return items[GateItemKey.PREGNANCY_TEST.value]


def consent(**changes: object) -> GateItem:
    context = replace(READY, **changes)  # type: ignore[arg-type]
    items = {
        i.key: i for i in evaluate_gate(context=context, requirements=replace(ESK, consent_max_age=RENEW))
    }
    return items[GateItemKey.CONSENT.value]


def test_a_two_year_old_negative_test_is_refused_naming_its_age_and_the_limit() -> None:
    old = pregnancy(pregnancy_test=PregnancyTest.NEGATIVE, pregnancy_test_on=date(2023, 3, 3))
    assert old.status is GateStatus.FAIL
    assert old.reason == (
        "Pregnancy test 2023-03-03 is 731 days old: the clinic accepts a test taken within 7 days before the "
        "first session of the course (this is the first session), so taken on or after 2025-02-24"
    )
    assert old.confirmed is False and "clinical.md §11" in old.source and "§2.5" in old.source


@pytest.mark.parametrize(
    ("tested_on", "status"),
    [(date(2025, 2, 24), GateStatus.PASS), (date(2025, 2, 23), GateStatus.FAIL), (TODAY, GateStatus.PASS)],
)
def test_on_the_first_session_the_test_is_at_most_7_days_old(tested_on: date, status: GateStatus) -> None:
    got = pregnancy(pregnancy_test=PregnancyTest.NEGATIVE, pregnancy_test_on=tested_on)
    assert got.status is status


def test_a_test_taken_for_the_first_session_serves_the_whole_course() -> None:
    # The course's first dose was on 2025-02-10; the test was taken 2025-02-05 (5 days before it).
    later = pregnancy(
        pregnancy_test=PregnancyTest.NEGATIVE,
        pregnancy_test_on=date(2025, 2, 5),
        course_started_on=date(2025, 2, 10),
    )
    assert later.status is GateStatus.PASS
    assert later.reason == (
        "Pregnancy test negative, 2025-02-05 (26 days ago); accepted: a test taken within 7 days before the "
        "first session of the course (first session 2025-02-10)"
    )
    too_early = pregnancy(
        pregnancy_test=PregnancyTest.NEGATIVE,
        pregnancy_test_on=date(2025, 2, 2),
        course_started_on=date(2025, 2, 10),
    )
    assert too_early.status is GateStatus.FAIL
    assert "first session 2025-02-10), so taken on or after 2025-02-03" in too_early.reason
    # When the clinic asks before each session, the same test is too old.
    each = pregnancy(
        BY_SESSION,
        pregnancy_test=PregnancyTest.NEGATIVE,
        pregnancy_test_on=date(2025, 2, 5),
        course_started_on=date(2025, 2, 10),
    )
    assert each.status is GateStatus.FAIL
    assert "within 7 days before each session, so taken on or after 2025-02-24" in each.reason


def test_a_positive_test_fails_whatever_the_intake_says_and_a_prescriber_decides() -> None:
    for record in (CAN, CANNOT):
        got = pregnancy(pregnancy_test=PregnancyTest.POSITIVE, pregnancy_test_on=TODAY, childbearing=record)
        assert got.status is GateStatus.FAIL and got.reason.startswith("Pregnancy test positive (2025-03-03)")
        assert got.overridable  # a prescriber's recorded decision (e.g. a negative blood test)


def test_not_indicated_only_when_the_signed_intake_records_no() -> None:
    skipped = pregnancy(childbearing=CANNOT)
    assert skipped.status is GateStatus.NOT_APPLICABLE
    assert skipped.reason == "Not needed: intake version 2: cannot become pregnant (Post-menopausal)"
    for record, says in (
        (CAN, "intake version 2: can become pregnant"),
        (replace(CANNOT, signed=False), "intake version 2 (not signed by a prescriber yet): cannot become"),
        (replace(CAN, answer=Answer.UNKNOWN), "whether the patient can become pregnant is not recorded"),
        (None, "no intake records whether the patient can become pregnant"),
    ):
        refused = pregnancy(pregnancy_test=PregnancyTest.NOT_INDICATED, childbearing=record)
        assert refused.status is GateStatus.FAIL, record
        assert refused.reason.startswith("“Not indicated” needs the intake") and says in refused.reason
        missing = pregnancy(childbearing=record)
        assert missing.status is GateStatus.FAIL and says in missing.reason


def test_a_test_dated_in_the_future_fails() -> None:
    got = pregnancy(pregnancy_test=PregnancyTest.NEGATIVE, pregnancy_test_on=date(2025, 3, 4))
    assert (got.status, got.reason) == (GateStatus.FAIL, "Pregnancy test date 2025-03-04 is in the future")


def test_a_400_day_old_consent_shows_its_age_and_fails_the_yearly_renewal() -> None:
    old = consent(consent_signed_on=date(2024, 1, 28))
    assert old.status is GateStatus.FAIL and old.overridable is False
    assert old.reason == (
        "Consent signed 2024-01-28 is 400 days old: the clinic renews consent every 365 days — the patient "
        "signs a new consent before this session"
    )
    assert old.confirmed is False and "renewed every 365 days" in old.source
    items = evaluate_gate(
        context=replace(READY, consent_signed_on=date(2024, 1, 28)),
        requirements=replace(ESK, consent_max_age=RENEW),
    )
    override = GateOverride(item_key="consent", reason="signed on paper, scan pending", prescriber="dr.a")
    assert [i.key for i in blocking_items(items=items, overrides=[override])] == ["consent"]


def test_a_current_consent_shows_its_age_and_the_renewal_or_its_own_expiry() -> None:
    fresh = consent(consent_signed_on=date(2025, 3, 2))
    assert fresh.status is GateStatus.PASS
    assert fresh.reason == "Consent signed 2025-03-02 (1 day ago); renewed every 365 days"
    edge = consent(consent_signed_on=date(2024, 3, 3))  # 365 days: still within
    assert edge.status is GateStatus.PASS and "(365 days ago)" in edge.reason
    # A consent with its own expiry date (consent policy) is current until then: the date is shown.
    dated = consent(consent_signed_on=date(2024, 1, 28), consent_expires_on=date(2025, 6, 1))
    assert dated.status is GateStatus.PASS
    assert dated.reason == "Consent signed 2024-01-28 (400 days ago); expires 2025-06-01 (in 90 days)"
    assert consent(consent_signed_on=TODAY).reason.startswith("Consent signed 2025-03-03 (today)")
