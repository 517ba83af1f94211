"""Organization-scoped pages read the account's organization through ``User.org_id``: an account that belongs
to no organization (only possible from a shell) is refused instead of being shown the rows whose organization
is empty."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import PermissionDenied
from django.test import Client


def test_staff_account_is_scoped_to_its_organization(admin: Any, org: Any) -> None:
    assert admin.org_id == org.pk


def test_account_without_organization_is_refused_not_shown_other_orphans(
    make_user: Any, sign_in: Any, admin: Any
) -> None:
    orphan_admin = make_user("orphan-admin", None, "admin", [], all_sites=True)
    make_user("orphan-nurse", None, "nurse", [])
    with pytest.raises(PermissionDenied):
        _ = orphan_admin.org_id

    response = sign_in(Client(enforce_csrf_checks=True), orphan_admin).get("/accounts/users/")
    assert response.status_code == 403
    assert b"orphan-nurse" not in response.content

    # The organization's own administrator still sees the organization's accounts only.
    response = sign_in(Client(enforce_csrf_checks=True), admin).get("/accounts/users/")
    assert response.status_code == 200
    assert b"admin1" in response.content and b"orphan-nurse" not in response.content
