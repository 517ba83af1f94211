"""Device: the bedside monitors registered on the Bedside monitors page (``monitoring.MonitorDevice``).

A monitor reading's Observation points at its monitor (``Observation.device``, interop.md §1.1: "Monitor
identity → Device (+ Observation.device); keep EUI-64 from OBX-18 as Device.identifier"; §1.5: "device →
Device"). One Device per registered monitor, id = the monitor's UUID.

* ``identifier``: the monitor's EUI-64 (MSH-3 or OBX-18, 16 hex digits) with ``type.text`` "EUI-64"; a
  monitor known only by the PV1-3 location it sends is identified by that text instead. The reference gives
  no identifier system for an EUI-64 (⚠; IHE PCD's OID for it is not in the reference), so both carry a
  local system (:data:`EUI64_SYSTEM`, :data:`LOCATION_SYSTEM`); ``Device?identifier=<value>`` finds
  either without a system.
* ``status``: active / inactive as set by an administrator; ``deviceName``: the label staff gave it
  (user-friendly-name); ``type``: text only (the reference gives no code for "patient monitor").
  Manufacturer and model are not stored (monitors do not send them in PCD-01), so they are left out.
* ``meta.lastUpdated`` is the registration time: the row has no edit time, and ``last_seen_at`` (updated
  every 30 s while the monitor sends) is not a change of the device.

Who may read it. A monitor serves many patients and holds no patient data of its own, so it has no patient
(``patient_field = ""``): system/ and user/ scopes read every monitor of their organization (a user/ scope
of any clinician role, as the Bedside monitors page lists them to staff); a patient/ scope reads the
monitors that measured that patient — those referenced by the patient's own Observations, so a patient app
can resolve ``Observation.device`` and learns nothing about other patients. ``Patient/$everything`` includes
the same monitors.
"""

from __future__ import annotations

import re
from typing import Any, Final

from django.db.models import Q, QuerySet

from ketaclinic.interop.fhir import codes
from ketaclinic.interop.fhir.params import Filter, ParamType, Token
from ketaclinic.interop.fhir.resources.base import COMMON_PARAMS, ParamDef, ResourceType, Source, instant
from ketaclinic.monitoring.models import MonitorDevice, VitalReading

EUI64_SYSTEM: Final = f"{codes.LOCAL_BASE}/sid/monitor-eui-64"
LOCATION_SYSTEM: Final = f"{codes.LOCAL_BASE}/sid/monitor-location"
DEVICE_STATUS: Final = "http://hl7.org/fhir/device-status"
_EUI64: Final = re.compile(r"^[0-9A-F]{16}$")


def identifier_of(device: MonitorDevice) -> dict[str, Any]:
    value = device.identifier
    if _EUI64.match(value.upper()):
        return {"type": {"text": "EUI-64"}, "system": EUI64_SYSTEM, "value": value.upper()}
    return {"type": {"text": "HL7 PV1-3 location"}, "system": LOCATION_SYSTEM, "value": value}


class DeviceSource(Source):
    model = MonitorDevice
    patient_field = ""  # a monitor has no patient: see the module docstring
    updated_field = "created_at"
    sort_fields = {"_id": "pk", "_lastUpdated": "created_at"}

    def of_patients(self, qs: QuerySet[Any], patient_ids: Any) -> QuerySet[Any]:
        """The monitors that measured these patients: referenced by their readings. Only the first row of
        each reading set is looked at (a set is one message from one monitor), which the patient index
        (``vitalreading_patient_sets``) holds, so this reads an index, not the readings table."""
        used = VitalReading.objects.filter(
            patient_id__in=patient_ids, first_of_set=True, device_id__isnull=False
        ).values("device_id")
        return qs.filter(pk__in=used)

    def filter_param(self, qs: QuerySet[Any], flt: Filter) -> QuerySet[Any]:
        tokens = [v for v in flt.values if isinstance(v, Token)]
        if flt.name == "identifier":
            parts = []
            for t in tokens:
                if t.code is None or t.system not in (None, EUI64_SYSTEM, LOCATION_SYSTEM):
                    continue
                if t.system == EUI64_SYSTEM or (t.system is None and _EUI64.match(t.code.upper())):
                    parts.append(Q(identifier=t.code.upper()))
                if t.system in (None, LOCATION_SYSTEM):
                    parts.append(Q(identifier=t.code))
            if not parts:
                return qs.none()
            combined = parts[0]
            for part in parts[1:]:
                combined |= part
            return qs.filter(combined)
        if flt.name == "status":
            wanted = {t.code for t in tokens if t.code is not None and t.system in (None, DEVICE_STATUS)} & {
                "active",
                "inactive",
            }
            return qs.filter(active__in=[code == "active" for code in wanted])
        return qs.none()

    def to_fhir(self, obj: Any, base_url: str) -> dict[str, Any]:
        d: MonitorDevice = obj
        resource: dict[str, Any] = {
            "resourceType": "Device",
            "id": str(d.pk),
            "meta": {"lastUpdated": instant(d.created_at)},
            "identifier": [identifier_of(d)],
            "status": "active" if d.active else "inactive",
            "type": {"text": "Bedside patient monitor (HL7 v2 PCD-01 sender)"},
        }
        if d.label:
            resource["deviceName"] = [{"name": d.label, "type": "user-friendly-name"}]
        return resource


DEVICE = ResourceType(
    name="Device",
    sources=(DeviceSource(),),
    params={
        **COMMON_PARAMS,
        "identifier": ParamDef(
            ParamType.TOKEN, "The monitor's EUI-64 (MSH-3/OBX-18) or the PV1-3 location it is known by."
        ),
        "status": ParamDef(ParamType.TOKEN, "active or inactive."),
    },
    sort_keys=("_id", "_lastUpdated"),
    documentation=(
        "Registered bedside monitors (the Device an Observation.device points at). No patient of its own: "
        "system/ and user/ scopes read the organization's monitors; a patient/ scope the monitors that "
        "measured the patient."
    ),
)
