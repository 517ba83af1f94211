"""Patient search with 100,000 patients: the search endpoint against the bare SQL query, same run.

    python bench/patient_search.py [--patients 100000] [--queries 300] [--postgres URL] [--write-readme]

The endpoint is measured in-process through Django's test client (routing, session + MFA check, CSRF,
validation, the scoped query, the audit row written for the read, JSON). The baseline is the same two SQL
statements (count + first page) on a raw DB-API cursor. Both use the same database and query terms.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from rich.console import Console
from rich.progress import Progress

console = Console()


def _setup_env(args: argparse.Namespace) -> None:
    var = tempfile.mkdtemp(prefix="ketaclinic-bench-")
    os.environ["KETACLINIC_VAR_DIR"] = var
    os.environ.setdefault("KETACLINIC_SECRET_KEY", "bench-secret-key-" + "x" * 40)
    if args.postgres:
        os.environ["KETACLINIC_DATABASE_URL"] = args.postgres
    else:
        os.environ["KETACLINIC_DATABASE_URL"] = f"sqlite:///{var}/bench.sqlite3"
    os.environ["DJANGO_SETTINGS_MODULE"] = "ketaclinic.settings"
    import django

    django.setup()
    from django.conf import settings

    settings.ALLOWED_HOSTS = ["testserver"]


def _populate(n: int) -> tuple[object, list[str]]:
    from django.core.management import call_command
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from ketaclinic.accounts.models import Organization, Site, User
    from ketaclinic.patients.models import Patient
    from ketaclinic.patients.services import mrn_key, normalize

    call_command("migrate", verbosity=0)
    org = Organization.objects.create(name="Bench", slug=f"bench-{random.randint(0, 10**9)}")
    site = Site.objects.create(organization=org, code="main", name="Main", time_zone="UTC")
    user = User.objects.create_user(
        username=f"bench-{org.slug}", password="x" * 16, organization=org, role="nurse"
    )
    user.sites.set([site])
    TOTPDevice.objects.create(user=user, name="bench", confirmed=True)
    rng = random.Random(7)
    syllables = ["ka", "lo", "mer", "vin", "tas", "ro", "bel", "dun", "qui", "zor", "an", "el", "ish", "ta"]
    families = sorted({"".join(rng.choice(syllables) for _ in range(3)).title() for _ in range(6000)})
    givens = sorted({"".join(rng.choice(syllables) for _ in range(2)).title() for _ in range(600)})
    batch: list[Patient] = []
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task(f"inserting {n:,} patients", total=n)
        for i in range(n):
            given, family = rng.choice(givens), rng.choice(families)
            batch.append(
                Patient(
                    organization=org,
                    site=site,
                    mrn=f"B{i:07d}",
                    mrn_key=mrn_key(f"B{i:07d}"),
                    mrn_key_reversed=mrn_key(f"B{i:07d}")[::-1],
                    given_name=given,
                    family_name=family,
                    given_norm=normalize(given),
                    family_norm=normalize(family),
                    date_of_birth=date(1940, 1, 1) + timedelta(days=rng.randrange(0, 30000)),
                    sex="female",
                    created_by=user,
                    updated_by=user,
                )
            )
            if len(batch) == 5000:
                Patient.objects.bulk_create(batch)
                progress.advance(task, len(batch))
                batch = []
        if batch:
            Patient.objects.bulk_create(batch)
    terms = [f[: rng.randint(3, 6)].lower() for f in rng.sample(families, 200)]
    return user, terms


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--postgres", help="PostgreSQL URL (a scratch database: tables are created in it)")
    parser.add_argument("--write-readme", action="store_true", help="record the figures in bench/README.md")
    args = parser.parse_args()
    _setup_env(args)

    from django.db import connection
    from django.test import Client
    from django.utils import timezone
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from ketaclinic.core.middleware import SESSION_LAST_SEEN, SESSION_STARTED

    user, terms = _populate(args.patients)
    client = Client()
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = TOTPDevice.objects.get(user=user).persistent_id
    session[SESSION_STARTED] = session[SESSION_LAST_SEEN] = timezone.now().isoformat()
    session.save()
    client.get("/patients/")  # CSRF cookie
    token = client.cookies["__Host-ketaclinic-csrf"].value

    def endpoint(term: str) -> None:
        response = client.post(
            "/api/patients/search",
            data=json.dumps({"name": term}),
            content_type="application/json",
            HTTP_X_CSRFTOKEN=token,
        )
        assert response.status_code == 200, response.content

    sql_count = (
        "SELECT COUNT(*) FROM patients_patient WHERE organization_id = %s AND "
        "((family_norm >= %s AND family_norm < %s) OR (given_norm >= %s AND given_norm < %s))"
    )
    sql_page = (
        "SELECT p.* , s.* FROM patients_patient p JOIN accounts_site s ON s.id = p.site_id "
        "WHERE p.organization_id = %s AND ((p.family_norm >= %s AND p.family_norm < %s) OR "
        "(p.given_norm >= %s AND p.given_norm < %s)) ORDER BY p.family_norm, p.given_norm, p.id LIMIT 25"
    )

    def bare(term: str) -> None:
        upper = term[:-1] + chr(ord(term[-1]) + 1)
        params = [user.organization_id, term, upper, term, upper]
        with connection.cursor() as cursor:
            cursor.execute(sql_count, params)
            cursor.fetchone()
            cursor.execute(sql_page, params)
            cursor.fetchall()

    for term in terms[:20]:  # warm caches for both
        endpoint(term)
        bare(term)
    timings: dict[str, list[float]] = {"endpoint": [], "bare_sql": []}
    rng = random.Random(11)
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("measuring", total=args.queries)
        for _ in range(args.queries):
            term = rng.choice(terms)
            order = [("endpoint", endpoint), ("bare_sql", bare)]
            rng.shuffle(order)  # interleave so machine noise hits both alike
            for name, func in order:
                start = time.perf_counter()
                func(term)
                timings[name].append((time.perf_counter() - start) * 1000)
            progress.advance(task)
    result = {
        "database": connection.vendor,
        "patients": args.patients,
        "queries": args.queries,
        "endpoint_median_ms": round(statistics.median(timings["endpoint"]), 3),
        "endpoint_p99_ms": round(_percentile(timings["endpoint"], 99), 3),
        "bare_sql_median_ms": round(statistics.median(timings["bare_sql"]), 3),
        "bare_sql_p99_ms": round(_percentile(timings["bare_sql"], 99), 3),
    }
    result["ratio_median"] = round(result["endpoint_median_ms"] / result["bare_sql_median_ms"], 2)
    result["ratio_p99"] = round(result["endpoint_p99_ms"] / result["bare_sql_p99_ms"], 2)
    console.print(json.dumps(result))
    if args.write_readme:
        _write_readme(result)
    return 0


def _write_readme(result: dict[str, object]) -> None:
    path = Path(__file__).with_name("README.md")
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    section = f"## patient_search ({result['database']})"
    body = (
        f"{section}\n\n`python bench/patient_search.py{' --postgres URL' if result['database'] == 'postgresql' else ''}` "
        f"— {result['patients']:,} patients, {result['queries']} name-prefix searches, "
        f"measured {date.today().isoformat()}.\n\n"
        "| | median ms | p99 ms |\n|---|---|---|\n"
        f"| search endpoint (auth, MFA, scoped query, audit row, JSON) | {result['endpoint_median_ms']} | {result['endpoint_p99_ms']} |\n"
        f"| bare SQL (same count + page queries) | {result['bare_sql_median_ms']} | {result['bare_sql_p99_ms']} |\n"
        f"| ratio | {result['ratio_median']}× | {result['ratio_p99']}× |\n"
    )
    start = text.find(section)
    if start == -1:
        text = text.rstrip() + "\n\n" + body
    else:
        end = text.find("\n## ", start + 1)
        text = text[:start] + body + (text[end:] if end != -1 else "")
    path.write_text(text)


if __name__ == "__main__":
    sys.exit(main())
