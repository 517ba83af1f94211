"""Pure clinical rules: no Django, no I/O. Every constant cites ../shared/reference/."""
