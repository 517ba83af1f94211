"""docs/pk-validation.md holds exactly what `python -m ketaclinic.pk.validation` prints."""

from __future__ import annotations

from pathlib import Path

from ketaclinic.pk.validation import markdown

DOC = Path(__file__).resolve().parents[2] / "docs" / "pk-validation.md"


def test_generated_tables_in_the_document_are_current() -> None:
    text = DOC.read_text(encoding="utf-8")
    begin, end = "<!-- BEGIN GENERATED -->\n", "<!-- END GENERATED -->"
    block = text[text.index(begin) + len(begin) : text.index(end)]
    assert block == markdown(), "regenerate with: python -m ketaclinic.pk.validation"


def test_every_validation_row_of_pk_md_is_covered() -> None:
    generated = markdown()
    # pk.md §2 rows 1–15 each appear in a table (rows 1–2 in the IV table, 9–13 grouped).
    for row in (
        "| 3 |",
        "| 4 |",
        "| 5 |",
        "| 6 |",
        "| 7 |",
        "| 8 |",
        "| 9–11 |",
        "| 12 |",
        "| 13 |",
        "| 14 |",
        "| 15 |",
    ):
        assert row in generated
    assert "vs observed 185 at 40 min (row 1)" in generated
    assert "+29.9 %" in generated and "+36.8 %" in generated  # Domino ≈ +30 %, Kamp ≈ +37 %
