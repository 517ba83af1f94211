"""ketaclinic: open-source software that runs a ketamine therapy program end to end."""

__version__ = "0.1.0"
