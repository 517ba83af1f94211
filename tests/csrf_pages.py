"""Pages driven as a browser does: a client that enforces CSRF, and posts carrying the token of the page's own
form (the issue 14 front-desk tests)."""

from __future__ import annotations

import re
from typing import Any

from django.test import Client


def csrf_client(sign_in: Any, user: Any) -> Client:
    return sign_in(Client(enforce_csrf_checks=True), user)  # type: ignore[no-any-return]


def token_of(html: str) -> str:
    found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    assert found, "the page carries no form with a CSRF token"
    return found.group(1)


def post_from(client: Client, page_url: str, url: str, data: dict[str, Any]) -> Any:
    """POST ``data`` to ``url`` with the CSRF token of the form on ``page_url`` (which must open: 200)."""
    page = client.get(page_url)
    assert page.status_code == 200, (page_url, page.status_code)
    return client.post(url, {**data, "csrfmiddlewaretoken": token_of(page.content.decode())})
