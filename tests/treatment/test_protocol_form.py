"""The protocol editor as a form: an administrator changes a clinic copy's phases (sessions, cadence, spacing,
dose, optional) and observation time without touching JSON; everything else (dose limits, scales) is kept;
unreadable or invalid values are named beside their field and nothing is saved; a stale form is refused."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from ketaclinic.treatment import library
from ketaclinic.treatment.models import ProtocolVersion


@pytest.fixture
def ours(admin: Any) -> Any:
    library.copy_protocol(
        user=admin, source=library.get_version(admin, "iv-trd-elektd"), new_id="iv-ours", name="Our IV"
    )
    return ProtocolVersion.objects.get(key="iv-ours", version=1)


def _form(row: Any, **changes: str) -> dict[str, str]:
    """What the browser sends for the untouched form, with ``changes`` (by input name)."""
    data: dict[str, str] = {
        "base_version": str(row.version),
        "name": row.data["name"],
        "monitoring.observation_min": str(row.data["monitoring"]["observation_min"]),
        "notes": row.data.get("notes", ""),
        "change_note": "",
    }
    for i, phase in enumerate(row.data["phases"]):
        p = f"phases[{i}]."
        cadence = phase["cadence"]
        data |= {
            p + "name": phase["name"],
            p + "sessions": "" if phase["sessions"] is None else str(phase["sessions"]),
            p + "cadence.per_week": "" if cadence["per_week"] is None else str(cadence["per_week"]),
            p + "cadence.every_days": "" if cadence["every_days"] is None else str(cadence["every_days"]),
            p + "min_spacing_days": str(phase["min_spacing_days"]),
            p + "dose.amount": str(phase["dose"]["amount"]),
            p + "dose.duration_min": str(phase["dose"]["duration_min"]),
            p + "note": phase["note"],
        }
        if phase["optional"]:
            data[p + "optional"] = "on"
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def test_the_form_shows_the_phases_with_their_limits(ours: Any, admin: Any, sign_in: Any) -> None:
    page = sign_in(Client(), admin).get("/protocols/iv-ours/edit/").content.decode()
    assert (
        'name="phases[0].sessions" value="6"' in page and 'name="phases[0].dose.amount" value="0.5"' in page
    )
    assert "Dose (mg/kg)" in page and "never outside 0.1–1.0" in page and "clinical.md §1.1" in page
    assert "default, unconfirmed in the clinic&#x27;s reference" in page  # the IV observation time
    assert "?json=1" in page


def test_saving_the_form_makes_the_next_version_and_keeps_the_rest(
    ours: Any, admin: Any, sign_in: Any
) -> None:
    response = sign_in(Client(), admin).post(
        "/protocols/iv-ours/edit/",
        _form(
            ours,
            **{
                "phases[0].sessions": "8",
                "phases[0].dose.amount": "0,6",  # a decimal comma is read too
                "monitoring.observation_min": "45",
                "phases[1].optional": None,  # unticked
                "change_note": "8 inductions at 0.6 mg/kg",
            },
        ),
    )
    assert response.status_code == 302
    v1 = ProtocolVersion.objects.get(key="iv-ours", version=1)
    v2 = ProtocolVersion.objects.get(key="iv-ours", version=2)
    assert (v2.data["phases"][0]["sessions"], v2.data["phases"][0]["dose"]["amount"]) == (8, 0.6)
    assert v2.data["monitoring"]["observation_min"] == 45 and v2.data["phases"][1]["optional"] is False
    assert v2.data["phases"][0]["dose"]["limits"] == v1.data["phases"][0]["dose"]["limits"]
    assert v2.data["scales"] == v1.data["scales"] and v2.change_note == "8 inductions at 0.6 mg/kg"
    assert v1.data["phases"][0]["sessions"] == 6  # the earlier version is unchanged


def test_bad_values_are_named_beside_their_field_and_nothing_is_saved(
    ours: Any, admin: Any, sign_in: Any
) -> None:
    client = sign_in(Client(), admin)
    unreadable = client.post("/protocols/iv-ours/edit/", _form(ours, **{"phases[0].dose.amount": "half"}))
    assert unreadable.status_code == 422
    page = unreadable.content.decode()
    field = page.split('name="phases[0].dose.amount"', 1)[1].split("</div>", 1)[0]
    assert "&#x27;half&#x27; is not a number" in field and 'value="half"' in page
    too_much = client.post("/protocols/iv-ours/edit/", _form(ours, **{"phases[0].dose.amount": "2"}))
    assert too_much.status_code == 422
    assert "phases[0].dose.amount" in too_much.context["errors"]
    field = too_much.content.decode().split('name="phases[0].dose.amount"', 1)[1].split("</div>", 1)[0]
    assert 'class="error"' in field
    no_name = client.post("/protocols/iv-ours/edit/", _form(ours, name=""))
    assert no_name.status_code == 422 and no_name.context["errors"]["name"] == "is required"
    assert ProtocolVersion.objects.filter(key="iv-ours").count() == 1


def test_a_stale_form_and_other_roles_are_refused(
    ours: Any, admin: Any, prescriber: Any, sign_in: Any
) -> None:
    client = sign_in(Client(), admin)
    assert client.post("/protocols/iv-ours/edit/", _form(ours, change_note="first")).status_code == 302
    stale = client.post("/protocols/iv-ours/edit/", _form(ours, change_note="second"))
    assert stale.status_code == 409 and "while you were editing" in stale.content.decode()
    assert sign_in(Client(), prescriber).post("/protocols/iv-ours/edit/", _form(ours)).status_code == 403
    assert ProtocolVersion.objects.filter(key="iv-ours").count() == 2
