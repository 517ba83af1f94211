"""Sample files the tests read, shipped with the tests so that a fresh clone runs every test.

``hl7/``: real HL7 v2 messages from public sources (provenance and licences in ``hl7/README.md``), copied
byte for byte from the project's reference folder; tests must use them as they are.
"""

from pathlib import Path

HL7_SAMPLES = Path(__file__).parent / "hl7"
