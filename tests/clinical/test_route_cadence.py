"""Reading cadence for IM, sublingual and the other non-IV routes (issue 13, point 7): every route a protocol
can have gets reminders and overdue alerts; a protocol's own monitoring plan replaces the route default within
the limits; a reading interval cannot be stretched until the reminders mean nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ketaclinic.clinical.conditions import DRUG_ROUTES, Drug
from ketaclinic.clinical.protocol_library import PROTOCOLS
from ketaclinic.clinical.protocols import validate_protocol
from ketaclinic.clinical.vitals import (
    DOSING_INTERVAL_LIMIT,
    ESKETAMINE_CADENCE,
    IM_CADENCE,
    IV_CADENCE,
    RECOVERY_INTERVAL_LIMIT,
    SUBLINGUAL_CADENCE,
    BolusCadence,
    Cadence,
    IntervalCadence,
    Treatment,
    default_cadence,
    minutes_between,
    next_reading_due,
    overdue,
    protocol_cadence,
    treatment_for,
)

T0 = datetime(2026, 3, 3, 14, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def due(cadence: Cadence, times: list[float], now: float) -> str:
    found = next_reading_due(
        cadence=cadence, reading_times=[at(m) for m in times], now=at(now), dose_started_at=T0
    )
    assert found is not None
    return f"{found.label}@{minutes_between(T0, found.due_at)}"


def test_every_route_a_protocol_can_have_gets_a_cadence() -> None:
    for drug, routes in DRUG_ROUTES.items():
        for route in routes:
            treatment = treatment_for(drug=drug.value, route=route.value)
            cadence = default_cadence(treatment)
            assert cadence is not None, (drug, route)
    assert treatment_for(drug="ketamine", route="im") is Treatment.KETAMINE_IM
    assert treatment_for(drug="ketamine", route="sublingual") is Treatment.KETAMINE_SUBLINGUAL
    assert treatment_for(drug="ketamine", route="iv") is Treatment.KETAMINE_IV
    assert treatment_for(drug="esketamine", route="intranasal") is Treatment.ESKETAMINE_NASAL
    # A route nobody named still gets the closest non-IV watch rather than nothing.
    other = default_cadence(treatment_for(drug="ketamine", route="rectal"))
    assert isinstance(other, BolusCadence)
    assert (other.early_every_min, other.early_window_min, other.then_every_min) == (10, 60, 15)


def test_im_is_read_every_10_min_for_the_first_hour_then_every_15() -> None:
    assert default_cadence(Treatment.KETAMINE_IM) is IM_CADENCE
    assert not IM_CADENCE.confirmed and "unconfirmed" in IM_CADENCE.source and "5–15 min" in IM_CADENCE.source
    assert due(IM_CADENCE, [-5], now=1) == "every 10 min in the first 60 min after the dose@10"
    assert due(IM_CADENCE, [-5, 10, 20], now=21) == "every 10 min in the first 60 min after the dose@30"
    # 50 + 10 = 60 is still inside the first hour; 60 + 10 = 70 is not, so 60 + 15.
    assert due(IM_CADENCE, [-5, 50], now=51) == "every 10 min in the first 60 min after the dose@60"
    assert due(IM_CADENCE, [-5, 60], now=61) == "every 15 min until discharge@75"
    assert due(IM_CADENCE, [-5, 100], now=101) == "every 15 min until discharge@115"


def test_sublingual_is_read_every_15_min_until_discharge() -> None:
    assert default_cadence(Treatment.KETAMINE_SUBLINGUAL) is SUBLINGUAL_CADENCE
    assert not SUBLINGUAL_CADENCE.confirmed and "clinical.md §7.1" in SUBLINGUAL_CADENCE.source
    assert due(SUBLINGUAL_CADENCE, [-5], now=1) == "every 15 min until discharge@15"
    assert due(SUBLINGUAL_CADENCE, [-5, 55], now=56) == "every 15 min until discharge@70"


def test_a_missed_im_reading_is_overdue_after_the_grace() -> None:
    found = next_reading_due(cadence=IM_CADENCE, reading_times=[at(-5)], now=at(15), dose_started_at=T0)
    assert found is not None and found.due_at == at(10)
    assert not overdue(due=found, now=at(15))
    assert overdue(due=found, now=at(15) + timedelta(seconds=1))


def test_the_protocols_own_plan_replaces_the_route_default() -> None:
    # The library's IM and SL templates ask for 15-min readings after the dose: the route defaults agree.
    for key, expected in (("im-clinic-template", IM_CADENCE), ("sl-clinic-template", SUBLINGUAL_CADENCE)):
        plan = PROTOCOLS[key].monitoring
        got = protocol_cadence(
            treatment_for(drug=PROTOCOLS[key].drug.value, route=PROTOCOLS[key].route.value),
            during_every_min=plan.vitals_during_dose_every_min,
            after_every_min=plan.vitals_after_dose_every_min,
            source=plan.source,
        )
        assert got is expected
    # IV: the library's plan is the reference's 10/15.
    assert protocol_cadence(Treatment.KETAMINE_IV, during_every_min=10, after_every_min=15) is IV_CADENCE
    # A protocol that reads sublingual sessions every 10 min in the first hour.
    sl = protocol_cadence(Treatment.KETAMINE_SUBLINGUAL, during_every_min=10, source="SL protocol v2")
    assert isinstance(sl, BolusCadence) and (sl.early_every_min, sl.then_every_min) == (10, 15)
    assert sl.source == "protocol monitoring plan: SL protocol v2" and not sl.confirmed
    assert due(sl, [-5, 40], now=41) == "every 10 min in the first 60 min after the dose@50"
    iv = protocol_cadence(Treatment.KETAMINE_IV, after_every_min=20)
    assert isinstance(iv, IntervalCadence) and (
        iv.during_infusion_every_min,
        iv.after_infusion_every_min,
    ) == (
        10,
        20,
    )
    # Esketamine keeps the label's checkpoints; "after" adds readings after the last one.
    esk = protocol_cadence(Treatment.ESKETAMINE_NASAL, after_every_min=30)
    assert esk.checkpoints == ESKETAMINE_CADENCE.checkpoints and esk.then_every_min == 30  # type: ignore[union-attr]


def test_reading_intervals_cannot_be_stretched_past_the_limits() -> None:
    assert (DOSING_INTERVAL_LIMIT.longest_min, RECOVERY_INTERVAL_LIMIT.longest_min) == (15, 30)
    with pytest.raises(ValueError, match="every 60 min is longer than the longest allowed, 15 min"):
        protocol_cadence(Treatment.KETAMINE_IM, during_every_min=60)
    with pytest.raises(ValueError, match="every 240 min is longer than the longest allowed, 30 min"):
        protocol_cadence(Treatment.KETAMINE_SUBLINGUAL, after_every_min=240)
    with pytest.raises(ValueError, match="shorter than the shortest allowed, 5 min"):
        protocol_cadence(Treatment.KETAMINE_IV, during_every_min=1)


def test_protocol_validation_refuses_a_stretched_reading_interval() -> None:
    from dataclasses import replace

    template = PROTOCOLS["im-clinic-template"]
    assert validate_protocol(template) == {}
    stretched = replace(template, monitoring=replace(template.monitoring, vitals_after_dose_every_min=120))
    errors = validate_protocol(stretched)
    assert "longer than the longest allowed, 30 min" in errors["monitoring.vitals_after_dose_every_min"]
    assert all(validate_protocol(p) == {} for p in PROTOCOLS.values())
    assert {p.drug for p in PROTOCOLS.values()} == set(Drug)


def test_cadences_in_words_for_staff() -> None:
    from ketaclinic.clinical.vitals import describe_cadence

    assert describe_cadence(IM_CADENCE) == (
        "every 10 min for the first 60 min after the dose, then every 15 min until discharge"
    )
    assert describe_cadence(SUBLINGUAL_CADENCE) == "every 15 min until discharge"
    assert describe_cadence(IV_CADENCE) == "every 10 min during the infusion, every 15 min after it"
    assert describe_cadence(ESKETAMINE_CADENCE) == "before dosing, ~40 min post-dose, before discharge"
