"""Interoperability edges: HL7 v2 from bedside monitors (``hl7``) and FHIR R4 (``fhir``).

Edges translate only: they parse and validate what arrives and render what leaves; the services
decide. See /work/shared/design.md ("The picture").
"""
