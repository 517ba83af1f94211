"""Issue 16 point 4: search semantics per R4 through HTTP (SQLite and PostgreSQL): token forms, string
search on names, _include/_revinclude, _summary/_elements, lenient and strict handling, keyset paging."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

import pytest
from django.test import Client
from django.utils import timezone
from tests.fhir.conftest import at, phq9

from ketaclinic.audit.models import AuditEntry

GENDER = "http://hl7.org/fhir/administrative-gender"
SUBSETTED = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
    "code": "SUBSETTED",
    "display": "subsetted",
}
LENIENT = {"HTTP_PREFER": "handling=lenient"}


@pytest.fixture
def world(org: Any, nurse: Any, make_patient: Any, record_scale: Any, bearer: Any) -> dict[str, Any]:
    """Zoë Ångström (female) with PHQ-9 on 1-3 March, Ben Okafor (male) with a PHQ-9 on 5 March."""
    zoe = make_patient(
        nurse, given_name="Zoë", family_name="Ångström", date_of_birth=date(1970, 1, 15), sex="female"
    )
    ben = make_patient(
        nurse, given_name="Ben", family_name="Okafor", date_of_birth=date(1990, 6, 1), sex="male"
    )
    s = {
        "z1": record_scale(nurse, zoe, "phq9", phq9(0, rest=1), at(1)),
        "z2": record_scale(nurse, zoe, "phq9", phq9(0, rest=2), at(2)),
        "z3": record_scale(nurse, zoe, "phq9", phq9(0, rest=3), at(3)),
        "b5": record_scale(nurse, ben, "phq9", phq9(0), at(5)),
    }
    return {"zoe": zoe, "ben": ben, "s": s, "h": bearer(org), "nurse": nurse}


def get(world: dict[str, Any], url: str, headers: dict[str, str] | None = None, **extra: str) -> Any:
    return Client().get(url, **(headers or world["h"]), **extra)


def bundle(world: dict[str, Any], url: str, headers: dict[str, str] | None = None, **extra: str) -> Any:
    response = get(world, url, headers, **extra)
    assert response.status_code == 200, response.content
    return response.json()


def match_ids(body: dict[str, Any]) -> list[str]:
    return [e["resource"]["id"] for e in body.get("entry", []) if e["search"]["mode"] == "match"]


def entries(body: dict[str, Any], mode: str) -> list[dict[str, Any]]:
    return [e for e in body.get("entry", []) if e["search"]["mode"] == mode]


def patients(world: dict[str, Any], query: str) -> set[str]:
    return set(match_ids(bundle(world, f"/fhir/Patient?{query}")))


# --- tokens ----------------------------------------------------------------------------------------------


def test_gender_honours_its_system(world: dict[str, Any]) -> None:
    zoe, ben = str(world["zoe"].pk), str(world["ben"].pk)
    assert patients(world, urlencode({"gender": f"{GENDER}|female"})) == {zoe}
    assert patients(world, urlencode({"gender": "http://example.org/gender|female"})) == set()
    assert patients(world, urlencode({"gender": "|female"})) == set()  # no system: ours has one
    assert patients(world, urlencode({"gender": f"{GENDER}|"})) == {zoe, ben}  # any code in the system
    assert patients(world, "gender=male") == {ben}
    assert patients(world, "gender:not=male") == {zoe}


def test_system_with_no_code_matches_every_code_of_that_system(world: dict[str, Any]) -> None:
    scores = {f"score-{r.pk}" for r in world["s"].values()}
    found = set(match_ids(bundle(world, "/fhir/Observation?" + urlencode({"code": "http://loinc.org|"}))))
    assert found == scores
    other = bundle(world, "/fhir/Observation?" + urlencode({"code": "http://snomed.info/sct|"}))
    assert match_ids(other) == []
    status = "http://terminology.hl7.org/CodeSystem/observation-category|"
    assert set(match_ids(bundle(world, "/fhir/Observation?" + urlencode({"category": status})))) == scores


def test_identifier_forms(world: dict[str, Any]) -> None:
    zoe, mrn = str(world["zoe"].pk), world["zoe"].mrn
    system = "https://ketaclinic.org/fhir/sid/mrn/owner"
    assert patients(world, urlencode({"identifier": f"{system}|{mrn}"})) == {zoe}
    assert patients(world, urlencode({"identifier": f"|{mrn}"})) == set()
    assert len(patients(world, urlencode({"identifier": f"{system}|"}))) == 2
    assert patients(world, urlencode({"identifier:not": f"{system}|{mrn}"})) == {str(world["ben"].pk)}


def test_unsupported_modifiers_are_refused_by_name(world: dict[str, Any]) -> None:
    response = get(world, "/fhir/Observation?code:text=phq")
    assert response.status_code == 400
    issue = response.json()["issue"][0]
    assert issue["expression"] == ["code:text"] and "modifier :text" in issue["diagnostics"]
    assert get(world, "/fhir/Patient?birthdate:not=1970").status_code == 400  # :not is for tokens


# --- strings ---------------------------------------------------------------------------------------------


def test_name_is_a_case_and_accent_insensitive_starts_with(world: dict[str, Any]) -> None:
    zoe, ben = str(world["zoe"].pk), str(world["ben"].pk)
    assert patients(world, "name=zoe") == {zoe}  # given, accent folded
    assert patients(world, "name=ANGST") == {zoe}  # family, Å folded
    assert patients(world, "name=ok") == {ben}
    assert patients(world, "name=str") == set()  # not a start
    assert patients(world, "name:contains=gstr") == {zoe}
    assert patients(world, urlencode({"name:exact": "Zoë"})) == {zoe}
    assert patients(world, urlencode({"name:exact": "Zoe"})) == set()  # exact: accents count
    assert patients(world, "name=zoe,ben") == {zoe, ben}  # OR
    assert patients(world, "family=okafor&given=ben") == {ben}  # AND
    assert patients(world, "given=okafor") == set()


def test_a_name_search_is_audited_per_patient_disclosed(world: dict[str, Any]) -> None:
    before = AuditEntry.objects.filter(category="fhir", object_type="Patient").count()
    assert patients(world, "name=zoe") == {str(world["zoe"].pk)}
    rows = AuditEntry.objects.filter(category="fhir", object_type="Patient").order_by("seq")[before:]
    assert [r.patient_id for r in rows] == [world["zoe"].pk]


# --- _include / _revinclude ------------------------------------------------------------------------------


def test_include_the_patients_of_observations(world: dict[str, Any]) -> None:
    body = bundle(world, f"/fhir/Observation?_include=Observation:patient&patient={world['ben'].pk}")
    assert match_ids(body) == [f"score-{world['s']['b5'].pk}"]
    included = entries(body, "include")
    assert [e["resource"]["id"] for e in included] == [str(world["ben"].pk)]
    assert included[0]["fullUrl"].endswith(f"/fhir/Patient/{world['ben'].pk}")
    assert body["total"] == 1  # included resources are not counted


def test_revinclude_observations_of_patients_and_derived_answers(world: dict[str, Any]) -> None:
    body = bundle(world, f"/fhir/Patient?_id={world['zoe'].pk}&_revinclude=Observation:patient")
    assert match_ids(body) == [str(world["zoe"].pk)]
    assert sorted(e["resource"]["id"] for e in entries(body, "include")) == sorted(
        f"score-{world['s'][k].pk}" for k in ("z1", "z2", "z3")
    )
    derived = bundle(
        world, f"/fhir/Observation?_id=score-{world['s']['z1'].pk}&_include=Observation:derived-from"
    )
    assert [e["resource"]["resourceType"] for e in entries(derived, "include")] == ["QuestionnaireResponse"]


def test_include_wildcard_does_not_repeat_a_resource(world: dict[str, Any]) -> None:
    body = bundle(world, f"/fhir/Observation?patient={world['zoe'].pk}&_include=*")
    types = [e["resource"]["resourceType"] for e in entries(body, "include")]
    assert types.count("Patient") == 1 and types.count("QuestionnaireResponse") == 3


def test_included_types_the_scopes_do_not_cover_are_left_out(
    world: dict[str, Any], org: Any, bearer: Any
) -> None:
    only_observations = bearer(org, "system/Observation.rs")
    body = bundle(world, "/fhir/Observation?_include=Observation:patient", only_observations)
    assert len(match_ids(body)) == 4 and entries(body, "include") == []


def test_every_included_disclosure_is_audited(world: dict[str, Any]) -> None:
    before = AuditEntry.objects.filter(category="fhir").count()
    bundle(world, "/fhir/Observation?_include=Observation:patient")
    rows = list(AuditEntry.objects.filter(category="fhir").order_by("seq")[before:])
    included = [r for r in rows if r.object_type == "Patient" and r.object_id == "search-include"]
    assert {r.patient_id for r in included} == {world["zoe"].pk, world["ben"].pk}


def test_unsupported_includes_are_400_strict_and_reported_lenient(world: dict[str, Any]) -> None:
    strict = get(world, "/fhir/Observation?_include=Observation:performer")
    assert strict.status_code == 400
    assert "Observation:performer" in strict.json()["issue"][0]["diagnostics"]
    assert get(world, "/fhir/Observation?_include:iterate=Observation:patient").status_code == 400
    lenient = bundle(world, "/fhir/Observation?_include=Observation:performer", **LENIENT)
    assert len(match_ids(lenient)) == 4
    outcome = entries(lenient, "outcome")[0]["resource"]
    assert outcome["resourceType"] == "OperationOutcome"
    assert "Observation:performer" in outcome["issue"][0]["diagnostics"]


# --- _summary / _elements --------------------------------------------------------------------------------


def test_summary_count_gives_the_total_only(world: dict[str, Any]) -> None:
    body = bundle(world, "/fhir/Observation?_summary=count")
    assert body["total"] == 4 and "entry" not in body


def test_summary_true_keeps_summary_elements_and_tags_the_subset(world: dict[str, Any], nurse: Any) -> None:
    from ketaclinic.patients.models import Patient

    Patient.objects.filter(pk=world["zoe"].pk).update(emergency_contact_name="Ola")  # contact: not summary
    whole = bundle(world, f"/fhir/Patient?_id={world['zoe'].pk}")["entry"][0]["resource"]
    assert "contact" in whole and "tag" not in whole["meta"]
    summary = bundle(world, f"/fhir/Patient?_id={world['zoe'].pk}&_summary=true")["entry"][0]["resource"]
    assert "contact" not in summary and summary["name"] == whole["name"] and summary["gender"] == "female"
    assert summary["meta"]["tag"] == [SUBSETTED]
    full = bundle(world, f"/fhir/Patient?_id={world['zoe'].pk}&_summary=false")["entry"][0]["resource"]
    assert full == whole


def test_elements_keeps_the_named_and_mandatory_elements(world: dict[str, Any]) -> None:
    body = bundle(world, f"/fhir/Observation?patient={world['ben'].pk}&_elements=value,subject")
    resource = body["entry"][0]["resource"]
    # status and code are mandatory in R4 Observation: kept so the subset stays valid
    assert set(resource) == {"resourceType", "id", "meta", "status", "code", "subject", "valueQuantity"}
    assert SUBSETTED in resource["meta"]["tag"]
    assert get(world, "/fhir/Observation?_elements=a b").status_code == 400


# --- lenient / strict ------------------------------------------------------------------------------------


def test_unknown_parameters_strict_by_default_and_ignored_when_lenient(world: dict[str, Any]) -> None:
    query = f"/fhir/Observation?bogus=1&patient={world['ben'].pk}"
    strict = get(world, query)
    assert strict.status_code == 400 and strict.json()["issue"][0]["expression"] == ["bogus"]
    assert get(world, query, HTTP_PREFER="handling=strict").status_code == 400
    body = bundle(world, query, **LENIENT)
    assert match_ids(body) == [f"score-{world['s']['b5'].pk}"]
    outcome = entries(body, "outcome")
    assert len(outcome) == 1 and outcome[0]["resource"]["issue"][0]["severity"] == "warning"
    assert "bogus" in outcome[0]["resource"]["issue"][0]["diagnostics"]
    self_link = next(link["url"] for link in body["link"] if link["relation"] == "self")
    assert "bogus" not in self_link and "patient=" in self_link
    # invalid values of a known parameter stay errors under lenient handling
    assert get(world, "/fhir/Observation?date=2026-13", **LENIENT).status_code == 400


# --- keyset paging ---------------------------------------------------------------------------------------


def walk(world: dict[str, Any], url: str, between: Any = None) -> tuple[list[str], list[int]]:
    """Follow ``next`` links from ``url``; call ``between(n)`` after page n."""
    seen: list[str] = []
    totals: list[int] = []
    n = 0
    while url:
        body = bundle(world, url)
        seen += match_ids(body)
        totals.append(body["total"])
        links = {link["relation"]: link["url"] for link in body["link"]}
        url = links.get("next", "")
        n += 1
        if between is not None:
            between(n)
        assert n < 50
    return seen, totals


@pytest.mark.parametrize("sort", ["", "date", "-date", "_id", "-_id", "_lastUpdated"])
def test_paging_while_rows_arrive_never_repeats_or_skips(
    world: dict[str, Any], clinic: Any, record_scale: Any, sort: str
) -> None:
    """Scores and chairside readings (several sources of Observation) in pages of 3; after each page new
    scores arrive that sort before, among and after the rest. The walk yields exactly the rows that
    existed at the first page, each once, and the total stays the first page's."""
    url = "/fhir/Observation?_count=3" + (f"&_sort={sort}" if sort else "")
    original, _totals = walk(world, url.replace("_count=3", "_count=100"))
    assert len(original) > 10 and any(i.startswith("vs-") for i in original)
    arrived = []

    def arrive(n: int) -> None:
        for hour in (0, 12, 23):  # before, among and after the scores of early March
            when = at(1 + n % 27, hour) + timedelta(minutes=n)
            arrived.append(
                record_scale(world["nurse"], world["zoe"], "gad7", {str(i): 1 for i in range(1, 8)}, when)
            )

    seen, totals = walk(world, url, arrive)
    assert len(seen) == len(set(seen))
    assert set(seen) == set(original)
    assert seen == original  # the same order as one long page
    assert set(totals) == {len(original)}
    assert len(arrived) > 9 and not {f"score-{a.pk}" for a in arrived} & set(seen)


@pytest.mark.parametrize("sort", ["", "date", "-date", "_id", "-_id"])
def test_paging_while_monitor_data_arrives_never_repeats_or_skips(
    world: dict[str, Any], org: Any, site: Any, nurse: Any, make_patient: Any, sort: str
) -> None:
    """The case the integration team saw: Observations paged while a bedside monitor keeps sending. Monitor
    values (integer keys, ``mon-…``) mixed with scores (UUID keys); after each page a new message arrives
    with values before, among and after the rest. Exactly the first page's rows, each once, in order."""
    from tests.fhir.device_feed import feed, message
    from tests.monitoring.conftest import register_monitor

    make_patient(nurse, mrn="M99")
    register_monitor(org, "0123456789ABCDEF", label="Bay 5 monitor")
    for n in range(3):
        feed(org, site, message(at=at(2 + n * 9, 10), mrn="M99", cid=f"W{n}"))
    url = "/fhir/Observation?_count=4" + (f"&_sort={sort}" if sort else "")
    original, _totals = walk(world, url.replace("_count=4", "_count=100"))
    assert sum(i.startswith("mon-") for i in original) == 15 and any(i.startswith("score-") for i in original)

    def arrive(n: int) -> None:
        feed(org, site, message(at=at(1 + (n * 7) % 27, n % 24), mrn="M99", cid=f"A{n}"))

    seen, totals = walk(world, url, arrive)
    assert len(seen) == len(set(seen))
    assert seen == original
    assert set(totals) == {len(original)}


def test_previous_links_walk_back(world: dict[str, Any]) -> None:
    first = bundle(world, "/fhir/Observation?_count=3&_sort=date")
    second = bundle(world, next(link["url"] for link in first["link"] if link["relation"] == "next"))
    assert match_ids(second) == [f"score-{world['s']['b5'].pk}"]
    back = bundle(world, next(link["url"] for link in second["link"] if link["relation"] == "previous"))
    assert match_ids(back) == match_ids(first)


def test_cursors_are_opaque_and_checked(world: dict[str, Any]) -> None:
    first = bundle(world, "/fhir/Patient?_count=1&_sort=birthdate")
    nxt = next(link["url"] for link in first["link"] if link["relation"] == "next")
    cursor = parse_qs(urlparse(nxt).query)["_cursor"][0]
    assert "1970" not in cursor and str(world["zoe"].pk) not in cursor  # no birth date or id readable
    assert get(world, f"/fhir/Patient?_count=1&_sort=birthdate&_cursor={cursor}").status_code == 200
    other_sort = get(world, f"/fhir/Patient?_count=1&_sort=-birthdate&_cursor={cursor}")
    assert other_sort.status_code == 400 and "_sort" in other_sort.json()["issue"][0]["diagnostics"]
    forged = get(world, f"/fhir/Patient?_count=1&_sort=birthdate&_cursor={cursor[:-4]}AAAA")
    assert forged.status_code == 400 and forged.json()["issue"][0]["expression"] == ["_cursor"]


def test_old_offset_links_still_work(world: dict[str, Any]) -> None:
    body = bundle(world, "/fhir/Observation?_sort=date&_count=2&_offset=2")
    assert match_ids(body) == [f"score-{world['s'][k].pk}" for k in ("z3", "b5")]
    relations = {link["relation"] for link in body["link"]}
    assert relations == {"self", "previous"}


def test_capability_statement_lists_includes(world: dict[str, Any]) -> None:
    rest = Client().get("/fhir/metadata").json()["rest"][0]
    patient = next(r for r in rest["resource"] if r["type"] == "Patient")
    assert "Observation:patient" in patient["searchRevInclude"]
    assert {p["name"] for p in patient["searchParam"]} >= {"name", "family", "given", "gender"}
    encounter = next(r for r in rest["resource"] if r["type"] == "Encounter")
    assert "Encounter:patient" in encounter["searchInclude"]
    assert {"Observation:encounter", "MedicationAdministration:context"} <= set(encounter["searchRevInclude"])


def test_encounter_include_and_revinclude(clinic: Any, org: Any, bearer: Any) -> None:
    h = bearer(org)
    esk = clinic.sessions["esk"]
    body = (
        Client()
        .get(
            f"/fhir/Encounter?_id={esk.pk}&_include=Encounter:patient&_revinclude=Observation:encounter"
            "&_revinclude=MedicationAdministration:context",
            **h,
        )
        .json()
    )
    kinds = [e["resource"]["resourceType"] for e in body["entry"] if e["search"]["mode"] == "include"]
    assert kinds.count("Patient") == 1
    assert kinds.count("MedicationAdministration") == 3  # the three esketamine devices
    observations = [e["resource"] for e in body["entry"] if e["resource"]["resourceType"] == "Observation"]
    # the session's own readings only, none of the IV session's
    assert observations and all(o["encounter"]["reference"] == f"Encounter/{esk.pk}" for o in observations)


def test_a_row_removed_from_an_earlier_page_shifts_nothing(world: dict[str, Any]) -> None:
    """Offset paging skipped a row when one before the offset went away; the cursor starts after the last
    row shown, whatever happened before it."""
    from ketaclinic.measures.models import ScaleAdministration

    first = bundle(world, "/fhir/Observation?_count=2&_sort=date")
    assert match_ids(first) == [f"score-{world['s'][k].pk}" for k in ("z1", "z2")]
    ScaleAdministration.objects.filter(pk=world["s"]["z1"].pk).delete()
    second = bundle(world, next(link["url"] for link in first["link"] if link["relation"] == "next"))
    assert match_ids(second) == [f"score-{world['s'][k].pk}" for k in ("z3", "b5")]


def test_every_type_and_sort_key_pages_like_one_long_page(
    clinic: Any,
    courses: Any,
    org: Any,
    site: Any,
    bearer: Any,
    record_scale: Any,
    nurse: Any,
    make_patient: Any,
) -> None:
    """Keyset paging in pages of 3 gives the same rows in the same order as one page of 100, for every
    type and every sort key both ways (UUID and integer ids, annotations, NULL sort values). Observation
    mixes sources with UUID keys (scores, chairside readings) and integer keys (monitor values, ``mon-…``)."""
    from tests.fhir.device_feed import feed, message
    from tests.monitoring.conftest import register_monitor

    from ketaclinic.interop.fhir.resources import REGISTRY

    make_patient(nurse, mrn="M88")
    register_monitor(org, "0123456789ABCDEF", label="Bay 4 monitor")
    start = timezone.now() - timedelta(hours=3)
    for n in range(4):  # 4 messages x 5 Observations: ids mon-<n> with n across a power of ten
        feed(org, site, message(at=start + timedelta(minutes=n), mrn="M88", cid=f"P{n}"))
    h = bearer(org)
    world = {"h": h}
    checked = 0
    for name, rtype in REGISTRY.items():
        for key in rtype.sort_keys:
            for sort in (key, f"-{key}"):
                whole = match_ids(bundle(world, f"/fhir/{name}?_sort={sort}&_count=100"))
                assert len(whole) < 100
                paged, _totals = walk(world, f"/fhir/{name}?_sort={sort}&_count=3")
                assert paged == whole, (name, sort)
                checked += len(whole)
    assert checked > 100


def test_infusion_segments_and_consents_are_periods(clinic: Any, org: Any, bearer: Any) -> None:
    """A running infusion segment has no end: ``effective-time=ge<5 minutes ago>`` finds it though it
    started 20 minutes ago (the start-only search missed it); a consent's provision period ends at its
    expiry or withdrawal."""
    from django.utils import timezone
    from tests.fhir.conftest import ids, iso

    h = bearer(org)
    recent = iso(timezone.now() - timedelta(minutes=5))
    found = ids(h, f"/fhir/MedicationAdministration?effective-time=ge{recent}")
    assert found == [str(clinic.doses["running"].pk)]
    after_t1 = ids(
        h, f"/fhir/MedicationAdministration?effective-time=sa{iso(clinic.t1)}&_sort=effective-time"
    )
    assert after_t1 == [str(clinic.doses[k].pk) for k in ("slower", "running")]
    today = timezone.now().date().isoformat()
    ended = ids(h, f"/fhir/Consent?period=eb{today}")
    assert sorted(ended) == sorted(str(clinic.consents[k].pk) for k in ("ann_old", "ben_esk"))
    assert str(clinic.consents["ann_esk"].pk) in ids(h, f"/fhir/Consent?period=ge{today}")
