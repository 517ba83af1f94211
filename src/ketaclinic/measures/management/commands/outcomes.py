"""``ketaclinic outcomes``: the clinic's outcomes over a period, for the quality lead's report or a script."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from ketaclinic.accounts.models import Organization, Site
from ketaclinic.accounts.services import system_user
from ketaclinic.measures import services


def _day(raw: str, name: str) -> date:
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise CommandError(f"--{name}: {raw!r} is not a date (YYYY-MM-DD)") from None


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f} %"


class Command(BaseCommand):
    help = (
        "Print the clinic's outcomes for a period (default: the last 90 days): sessions carried out and "
        "stopped, patients treated, response and remission per rating scale (overall and per course "
        "protocol), monitoring alerts, adverse events and suicidality alerts. Counts only, no patient "
        "named; the same figures as the Outcomes page. Recorded in the audit log."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--organization", help="organization slug (needed when there is more than one)")
        parser.add_argument("--site", help="site code (default: every site)")
        parser.add_argument("--since", help="first day, YYYY-MM-DD (default: 90 days ago)")
        parser.add_argument("--until", help="last day, YYYY-MM-DD (default: today)")
        parser.add_argument("--json", action="store_true", help="print JSON for scripts")

    def handle(self, *args: Any, **options: Any) -> None:
        orgs = Organization.objects.all()
        if options["organization"]:
            org = orgs.filter(slug=options["organization"]).first()
            if org is None:
                raise CommandError(f"No organization with slug {options['organization']!r}.")
        elif orgs.count() == 1:
            org = orgs.get()
        else:
            raise CommandError("Say which organization: --organization SLUG.")
        site = None
        if options["site"]:
            site = Site.objects.filter(organization=org, code=options["site"]).first()
            if site is None:
                raise CommandError(f"No site with code {options['site']!r} in {org}.")
        today = timezone.localdate()
        since = _day(options["since"], "since") if options["since"] else today - timedelta(days=90)
        until = _day(options["until"], "until") if options["until"] else today
        reader = system_user("outcomes-report", org)
        if not reader.all_sites:
            reader.all_sites = True
            reader.save(update_fields=["all_sites"])
        try:
            report = services.outcomes_report(user=reader, site=site, since=since, until=until)
        except services.OutcomesInputError as exc:
            raise CommandError("; ".join(f"--{k}: {v}" for k, v in exc.errors.items())) from None
        data = services.outcomes_as_dict(report)
        if options["json"]:
            self.stdout.write(json.dumps(data, indent=2))
            return
        where = site.name if site else f"every site of {org.name}"
        out = [
            f"Outcomes {since.isoformat()} to {until.isoformat()}, {where} (counts only)",
            f"  sessions carried out {report.sessions_carried_out}, stopped {report.sessions_stopped}, "
            f"patients treated {report.patients_treated}",
        ]
        for o, groups in report.rows:
            if o.improvement_rule is not None:
                out.append(
                    f"  {o.name}: {o.patients} patients; meaningful improvement "
                    f"{o.improved}/{o.improvement_evaluable} ({_pct(o.improvement_pct)})"
                )
                continue
            out.append(
                f"  {o.name}: {o.patients} patients; response {o.responders}/{o.response_evaluable} "
                f"({_pct(o.response_pct)}); remission {o.remitters}/{o.remission_evaluable} "
                f"({_pct(o.remission_pct)})"
            )
            for key, g in groups:
                out.append(
                    f"    {key or 'no course recorded'}: {g.patients} patients; response "
                    f"{g.responders}/{g.response_evaluable}; remission {g.remitters}/{g.remission_evaluable}"
                )
        alerts = ", ".join(f"{n} {k}" for k, n in sorted(report.monitoring_alerts.items())) or "none"
        out.append(
            f"  monitoring alerts {alerts}; adverse events {report.adverse_events} "
            f"({report.serious_adverse_events} serious); suicidality alerts {report.suicidality_alerts} "
            f"({report.suicidality_acknowledged} acknowledged)"
        )
        self.stdout.write("\n".join(out))
