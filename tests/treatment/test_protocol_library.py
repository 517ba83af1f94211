"""Protocol library in the database: on-demand sync of built-ins, admin copy and edit with versions kept,
validation naming every bad field, roles, and a plan recording the version it used."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from ketaclinic.clinical.protocol_library import PROTOCOLS
from ketaclinic.treatment import library, services
from ketaclinic.treatment.models import ProtocolVersion


def test_builtins_sync_once_and_are_listed(prescriber: Any, sign_in: Any) -> None:
    assert library.sync_builtins() == len(PROTOCOLS)
    assert library.sync_builtins() == 0  # idempotent
    page = sign_in(Client(), prescriber).get("/protocols/").content.decode()
    for key in PROTOCOLS:
        assert key in page
    detail = sign_in(Client(), prescriber).get("/protocols/esk-trd-label/").content.decode()
    assert "clinical.md §2.1" in detail  # every dose shows its source


def test_admin_copies_then_edits_versions_are_kept(admin: Any, sign_in: Any) -> None:
    client = sign_in(Client(), admin)
    response = client.post("/protocols/im-clinic-template/copy/", {"new_id": "im-ours", "name": "Our IM"})
    assert response.status_code == 302
    v1 = ProtocolVersion.objects.get(key="im-ours")
    assert (v1.version, v1.organization_id, v1.data["based_on"]) == (
        1,
        admin.organization_id,
        "im-clinic-template@1",
    )
    data = dict(v1.data)
    data["notes"] = "Clinic decided 0.4 mg/kg"
    data["phases"] = [dict(p) for p in data["phases"]]
    data["phases"][0]["dose"] = dict(data["phases"][0]["dose"], amount=0.4)
    response = client.post(
        "/protocols/im-ours/edit/",
        {"base_version": 1, "protocol": json.dumps(data), "change_note": "lower default"},
    )
    assert response.status_code == 302
    versions = {r.version: r for r in ProtocolVersion.objects.filter(key="im-ours")}
    assert set(versions) == {1, 2}
    assert versions[1].data["phases"][0]["dose"]["amount"] == 0.5  # the earlier version is unchanged
    assert versions[2].data["phases"][0]["dose"]["amount"] == 0.4
    # A stale editor (started from version 1) is refused.
    again = client.post("/protocols/im-ours/edit/", {"base_version": 1, "protocol": json.dumps(data)})
    assert again.status_code == 409


def test_edits_are_validated_naming_every_bad_field(admin: Any, sign_in: Any) -> None:
    source = library.get_version(admin, "esk-trd-label")
    library.copy_protocol(user=admin, source=source, new_id="esk-ours", name="")
    data = ProtocolVersion.objects.get(key="esk-ours").data
    data = json.loads(json.dumps(data))
    data["phases"][0]["dose"]["amount"] = 70  # not a device multiple
    data["monitoring"]["observation_min"] = 60  # label: at least 120
    response = sign_in(Client(), admin).post(
        "/protocols/esk-ours/edit/", {"base_version": 1, "protocol": json.dumps(data)}
    )
    assert response.status_code == 422
    errors = response.context["errors"]
    assert "not an allowed dose" in errors["phases[0].dose.amount"]
    assert "at least 120 minutes" in errors["monitoring.observation_min"]
    assert ProtocolVersion.objects.filter(key="esk-ours").count() == 1


def test_builtins_are_read_only_and_only_admins_change_the_library(
    admin: Any, prescriber: Any, sign_in: Any
) -> None:
    library.sync_builtins()
    assert sign_in(Client(), admin).get("/protocols/iv-trd-elektd/edit/").status_code == 302
    with pytest.raises(library.LibraryError, match="copy the protocol first"):
        library.edit_protocol(user=admin, key="iv-trd-elektd", base_version=1, text="{}")
    client = sign_in(Client(), prescriber)
    assert client.post("/protocols/iv-trd-elektd/copy/", {"new_id": "x-copy"}).status_code == 403
    response = sign_in(Client(), admin).post("/protocols/iv-trd-elektd/copy/", {"new_id": "iv-trd-murrough"})
    assert response.status_code == 422  # the ID is taken


def test_plan_records_the_protocol_version_it_used(
    admin: Any, nurse: Any, prescriber: Any, patient: Any, site: Any, setup: Any
) -> None:
    setup.open_site(site)
    setup.screened(nurse, prescriber, patient)
    source = library.get_version(admin, "iv-trd-elektd")
    library.copy_protocol(user=admin, source=source, new_id="iv-ours", name="Our IV")
    text = json.dumps(dict(ProtocolVersion.objects.get(key="iv-ours").data, notes="v2"))
    library.edit_protocol(user=admin, key="iv-ours", base_version=1, text=text)
    start = timezone.localdate() + timedelta(days=7 - timezone.localdate().weekday())
    plan = services.create_plan(
        user=prescriber, patient=patient, data={"protocol": "iv-ours", "start": start.isoformat()}
    )
    assert (plan.protocol_key, plan.protocol_version, plan.protocol.version) == ("iv-ours", 2, 2)
