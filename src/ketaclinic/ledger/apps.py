from django.apps import AppConfig


class LedgerConfig(AppConfig):
    """The controlled-substance register for ketamine and esketamine stock (security.md §4, DEA 21 CFR 1304):
    receipts, use with waste under a witness's fresh signature, counts, losses and corrections, each an
    append-only, hash-chained entry with the running balance of its lot."""

    name = "ketaclinic.ledger"
    label = "ledger"
    verbose_name = "Controlled-substance register"
