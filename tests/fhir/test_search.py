"""Search parameters, sorting, paging links and OperationOutcome errors."""

from __future__ import annotations

from datetime import date
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

import pytest
from django.test import Client
from tests.fhir.conftest import FORM, at, phq9

from ketaclinic.measures.models import ScaleAdministration

LOINC_PHQ9_TOTAL = "http://loinc.org|44261-6"
LOCAL = "https://ketaclinic.org/fhir/CodeSystem/instrument"


@pytest.fixture
def world(org: Any, nurse: Any, make_patient: Any, record_scale: Any, bearer: Any) -> dict[str, Any]:
    """Ann: PHQ-9 on 1, 2, 3 March (totals 7, 14, 21), GAD-7 on 2 March (7), MADRS on 4 March (20),
    C-SSRS screener on 3 March (no total). Ben: PHQ-9 on 5 March (0)."""
    ann = make_patient(nurse, given_name="Ann", date_of_birth=date(1970, 1, 15), sex="female")
    ben = make_patient(nurse, given_name="Ben", date_of_birth=date(1990, 6, 1), sex="male")
    s = {
        "p1": record_scale(nurse, ann, "phq9", phq9(0, rest=1), at(1)),  # 0 + 7×1 = 7
        "p2": record_scale(nurse, ann, "phq9", phq9(0, rest=2), at(2)),  # 0 + 7×2 = 14
        "p3": record_scale(nurse, ann, "phq9", phq9(0, rest=3), at(3)),  # 0 + 7×3 = 21
        "g2": record_scale(nurse, ann, "gad7", {str(i): 1 for i in range(1, 8)}, at(2, 15)),  # 7×1 = 7
        "m4": record_scale(nurse, ann, "madrs", {str(i): 2 for i in range(1, 11)}, at(4)),  # 10×2 = 20
        "c3": record_scale(nurse, ann, "cssrs-screen", {"1": 0, "2": 0, "6": 0}, at(3, 9)),
        "b5": record_scale(nurse, ben, "phq9", phq9(0), at(5)),  # 0
    }
    # Record times: each administration "entered" an hour after it was given.
    for row in s.values():
        ScaleAdministration.objects.filter(pk=row.pk).update(
            created_at=row.administered_at.replace(hour=row.administered_at.hour + 1)
        )
    return {"ann": ann, "ben": ben, "s": s, "h": bearer(org)}


def _get(world: dict[str, Any], url: str) -> Any:
    return Client().get(url, **world["h"])


def _ids(response: Any) -> list[str]:
    assert response.status_code == 200, response.content
    return [e["resource"]["id"] for e in response.json().get("entry", [])]


def obs(world: dict[str, Any], *keys: str) -> list[str]:
    return [f"score-{world['s'][k].pk}" for k in keys]


def test_observations_exist_only_for_scales_with_a_total(world: dict[str, Any]) -> None:
    found = _ids(_get(world, "/fhir/Observation?_sort=date"))
    assert found == obs(world, "p1", "p2", "g2", "p3", "m4", "b5")  # no C-SSRS screener


def test_patient_and_subject(world: dict[str, Any]) -> None:
    ben = world["ben"].pk
    assert _ids(_get(world, f"/fhir/Observation?patient=Patient/{ben}")) == obs(world, "b5")
    assert _ids(_get(world, f"/fhir/Observation?subject={ben}")) == obs(world, "b5")
    assert _ids(_get(world, f"/fhir/QuestionnaireResponse?patient={ben}")) == [str(world["s"]["b5"].pk)]


@pytest.mark.parametrize(
    "code,expected",
    [
        (LOINC_PHQ9_TOTAL, ["p1", "p2", "p3", "b5"]),
        ("44261-6", ["p1", "p2", "p3", "b5"]),  # any system
        (f"{LOCAL}|madrs-total", ["m4"]),  # local code where LOINC has none
        (f"{LOCAL}|phq9-total", ["p1", "p2", "p3", "b5"]),  # the local code is on LOINC-coded scores too
        ("http://loinc.org|70274-6,http://loinc.org|44261-6", ["p1", "p2", "g2", "p3", "b5"]),  # OR
        ("http://snomed.info/sct|44261-6", []),  # right code, wrong system
        ("http://loinc.org|", ["p1", "p2", "g2", "p3", "b5"]),  # any LOINC code: not MADRS
    ],
)
def test_code_as_system_and_code(world: dict[str, Any], code: str, expected: list[str]) -> None:
    response = _get(world, f"/fhir/Observation?{urlencode({'code': code, '_sort': 'date'})}")
    assert _ids(response) == obs(world, *expected)


@pytest.mark.parametrize(
    "dates,expected",
    [
        (["2026-03-02"], ["p2", "g2"]),  # eq a day = the whole day
        (["eq2026-03-02T12:00"], ["p2"]),  # eq a minute
        (["ge2026-03-03"], ["p3", "m4", "b5"]),
        (["gt2026-03-03"], ["m4", "b5"]),  # after the whole of 3 March
        (["le2026-03-02"], ["p1", "p2", "g2"]),  # up to the end of 2 March
        (["lt2026-03-02"], ["p1"]),
        (["ge2026-03-02", "lt2026-03-04"], ["p2", "g2", "p3"]),  # AND
        (["2026-03-01,2026-03-05"], ["p1", "b5"]),  # OR
        (["ge2026-03-02T14:00+01:00"], ["g2", "p3", "m4", "b5"]),  # 13:00 UTC: after p2 (12:00)
    ],
)
def test_date_with_prefixes(world: dict[str, Any], dates: list[str], expected: list[str]) -> None:
    query = urlencode([("date", d) for d in dates] + [("_sort", "date")])
    assert _ids(_get(world, f"/fhir/Observation?{query}")) == obs(world, *expected)


def test_category(world: dict[str, Any]) -> None:
    all_scores = obs(world, "p1", "p2", "g2", "p3", "m4", "b5")
    survey = "http://terminology.hl7.org/CodeSystem/observation-category|survey"
    assert _ids(_get(world, f"/fhir/Observation?category={survey}&_sort=date")) == all_scores
    assert _ids(_get(world, "/fhir/Observation?category=survey&_sort=date")) == all_scores
    assert _ids(_get(world, "/fhir/Observation?category=vital-signs")) == []


def test_id_and_last_updated(world: dict[str, Any]) -> None:
    p2, m4 = obs(world, "p2", "m4")
    assert sorted(_ids(_get(world, f"/fhir/Observation?_id={p2},{m4}"))) == sorted([p2, m4])
    assert _ids(_get(world, f"/fhir/Observation?_id={world['s']['p2'].pk}")) == []  # a QR id, not ours
    # Entered at given time + 1 h: p2 at 13:00, g2 at 16:00 on 2 March.
    assert _ids(
        _get(world, "/fhir/Observation?_lastUpdated=ge2026-03-02T13:30&_lastUpdated=lt2026-03-03")
    ) == obs(world, "g2")


def test_sort_by_date_descending_and_last_updated(world: dict[str, Any]) -> None:
    assert _ids(_get(world, "/fhir/Observation?_sort=-date")) == obs(
        world, "b5", "m4", "p3", "g2", "p2", "p1"
    )
    assert _ids(_get(world, "/fhir/Observation?_sort=_lastUpdated")) == obs(
        world, "p1", "p2", "g2", "p3", "m4", "b5"
    )


def test_questionnaire_response_parameters(world: dict[str, Any]) -> None:
    s = world["s"]
    phq9_url = "https://ketaclinic.org/fhir/Questionnaire/phq9"
    found = _ids(_get(world, f"/fhir/QuestionnaireResponse?questionnaire={phq9_url}&_sort=authored"))
    assert found == [str(s[k].pk) for k in ("p1", "p2", "p3", "b5")]
    found = _ids(_get(world, "/fhir/QuestionnaireResponse?authored=2026-03-03&_sort=-authored"))
    assert found == [str(s["p3"].pk), str(s["c3"].pk)]  # the C-SSRS answers are a QR too (09:00 < 12:00)


def test_patient_parameters(world: dict[str, Any]) -> None:
    ann, ben = str(world["ann"].pk), str(world["ben"].pk)
    assert _ids(_get(world, "/fhir/Patient?gender=male")) == [ben]
    assert _ids(_get(world, "/fhir/Patient?birthdate=lt1980")) == [ann]
    assert _ids(_get(world, "/fhir/Patient?birthdate=1990-06")) == [ben]
    mrn = world["ann"].mrn
    assert _ids(_get(world, f"/fhir/Patient?identifier={mrn}")) == [ann]
    system = "https://ketaclinic.org/fhir/sid/mrn/owner"
    assert _ids(_get(world, f"/fhir/Patient?identifier={system}|{mrn}")) == [ann]
    assert (
        _ids(_get(world, f"/fhir/Patient?identifier=https://ketaclinic.org/fhir/sid/mrn/elsewhere|{mrn}"))
        == []
    )
    assert _ids(_get(world, "/fhir/Patient?_sort=-birthdate")) == [ben, ann]


def test_paging_links_walk_every_result_once(world: dict[str, Any]) -> None:
    url = "/fhir/Observation?_sort=date&_count=4&patient=" + str(world["ann"].pk)
    first = _get(world, url).json()
    assert first["total"] == 5 and len(first["entry"]) == 4  # Ann has 5 scores; pages of 4: 4 + 1
    links = {link["relation"]: link["url"] for link in first["link"]}
    assert set(links) == {"self", "next"}
    query = parse_qs(urlparse(links["next"]).query)
    # Issue 16: a keyset cursor (paging.py), not an offset; the search's own parameters are kept.
    assert "_offset" not in query and query["_count"] == ["4"] and query["_sort"] == ["date"]
    assert len(query["_cursor"]) == 1 and str(world["ann"].pk) not in query["_cursor"][0]
    second = _get(world, links["next"]).json()
    assert second["total"] == 5
    assert [e["resource"]["id"] for e in second["entry"]] == obs(world, "m4")
    links2 = {link["relation"]: link["url"] for link in second["link"]}
    assert set(links2) == {"self", "previous"}
    back = _get(world, links2["previous"]).json()  # the page before m4: the first four again
    assert [e["resource"]["id"] for e in back["entry"]] == obs(world, "p1", "p2", "g2", "p3")
    assert [e["resource"]["id"] for e in first["entry"]] == obs(world, "p1", "p2", "g2", "p3")
    assert all(e["search"]["mode"] == "match" for e in first["entry"])
    assert first["entry"][0]["fullUrl"] == f"http://testserver/fhir/Observation/{obs(world, 'p1')[0]}"


def test_count_defaults_caps_and_zero(world: dict[str, Any], nurse: Any, make_patient: Any) -> None:
    for n in range(120):
        make_patient(nurse, given_name=f"P{n:03d}")  # no name the start of another: not duplicates
    default = _get(world, "/fhir/Patient").json()
    assert default["total"] == 122 and len(default["entry"]) == 20  # 2 + 120 patients, default page 20
    capped = _get(world, "/fhir/Patient?_count=1000").json()
    assert len(capped["entry"]) == 100
    only_total = _get(world, "/fhir/Patient?_count=0").json()
    assert only_total["total"] == 122 and "entry" not in only_total


def test_post_search_takes_a_form_body(world: dict[str, Any]) -> None:
    response = Client().post(
        "/fhir/Observation/_search",
        urlencode({"code": LOINC_PHQ9_TOTAL, "patient": str(world["ben"].pk)}),
        content_type=FORM,
        **world["h"],
    )
    assert _ids(response) == obs(world, "b5")
    as_json = Client().post("/fhir/Observation/_search", {}, content_type="application/json", **world["h"])
    assert as_json.status_code == 415


@pytest.mark.parametrize(
    "query,bad",
    [
        ("name=Ann", {"name"}),
        ("date=2026-13-01&_count=x", {"date", "_count"}),
        ("code:text=phq", {"code:text"}),
        ("_sort=name", {"_sort"}),
        ("patient=Group/1", {"patient"}),
        # _format=xml is 406, not 400: tests/fhir/test_http.py
    ],
)
def test_bad_parameters_are_400_operation_outcomes_naming_each(
    world: dict[str, Any], query: str, bad: set[str]
) -> None:
    response = _get(world, f"/fhir/Observation?{query}")
    assert response.status_code == 400 and response["Content-Type"] == "application/fhir+json"
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    assert {issue["expression"][0] for issue in body["issue"]} == bad


def test_unknown_types_and_ids_are_404_operation_outcomes(world: dict[str, Any]) -> None:
    for url in (
        "/fhir/Location",  # a type this server does not offer
        "/fhir/Location/1",
        "/fhir/Device/1",  # an id no monitor has
        "/fhir/Condition/1",  # an id no intake yields
        "/fhir/Observation/score-00000000-0000-0000-0000-000000000000",
        "/fhir/Observation/not-an-id",
        "/fhir/Patient/a/b/c",
    ):
        response = _get(world, url)
        assert response.status_code == 404, url
        assert response.json()["resourceType"] == "OperationOutcome"


def test_read_has_an_etag_for_versioned_resources(world: dict[str, Any]) -> None:
    response = _get(world, f"/fhir/Patient/{world['ann'].pk}")
    assert response.status_code == 200 and response["ETag"] == 'W/"1"'
    observation = _get(world, f"/fhir/{'Observation'}/{obs(world, 'p3')[0]}").json()
    assert observation["valueQuantity"]["value"] == 21
    assert observation["derivedFrom"] == [{"reference": f"QuestionnaireResponse/{world['s']['p3'].pk}"}]


def test_everything_returns_the_patient_and_their_resources(world: dict[str, Any]) -> None:
    response = _get(world, f"/fhir/Patient/{world['ben'].pk}/$everything")
    body = response.json()
    assert body["type"] == "searchset" and body["total"] == 3  # Patient + score Observation + QR
    assert [e["resource"]["resourceType"] for e in body["entry"]] == [
        "Patient",
        "Observation",
        "QuestionnaireResponse",
    ]
    assert _get(world, f"/fhir/Patient/{world['ben'].pk}/$everything?_count=5").status_code == 400


def test_a_type_served_by_two_tables_is_merged_in_sort_order(world: dict[str, Any], org: Any) -> None:
    """The vital-signs path: a second source for Observation. Here a copy of the score source (ids
    ``copy-<uuid>``) so each score appears twice; pages must interleave both tables by date."""
    from ketaclinic.accounts.services import system_user
    from ketaclinic.interop.fhir import services
    from ketaclinic.interop.fhir.auth import Grant
    from ketaclinic.interop.fhir.params import parse_search
    from ketaclinic.interop.fhir.resources.base import ResourceType
    from ketaclinic.interop.fhir.resources.observation import OBSERVATION, ScaleScoreSource
    from ketaclinic.interop.fhir.scopes import parse_scopes

    class CopySource(ScaleScoreSource):
        prefix = "copy"

    two = ResourceType(
        name="Observation",
        sources=(ScaleScoreSource(), CopySource()),
        params=OBSERVATION.params,
        sort_keys=OBSERVATION.sort_keys,
        documentation="",
    )
    grant = Grant(
        organization_id=org.pk,
        scopes=parse_scopes("system/*.rs"),
        audit_user=system_user("t", org),
        client_id="t",
    )
    order = ["p1", "p2", "g2", "p3", "m4", "b5"]
    expected = [f"{prefix}-{world['s'][k].pk}" for k in order for prefix in sorted(("copy", "score"))]
    seen: list[str] = []
    for offset in (0, 5, 10):  # 12 rows in pages of 5: 5 + 5 + 2
        query = parse_search(
            [("_sort", "date"), ("_count", "5"), ("_offset", str(offset))], two.param_types, two.sort_keys
        )
        page = services.search(grant=grant, rtype=two, query=query, request=None)
        assert page.total == 12
        seen += [r["id"] for r in page.resources]
    assert seen == expected
    query = parse_search([("_sort", "-date"), ("_count", "3")], two.param_types, two.sort_keys)
    newest = [r["id"] for r in services.search(grant=grant, rtype=two, query=query, request=None).resources]
    assert newest == expected[::-1][:3]
