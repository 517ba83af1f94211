"""Co-signatures: a colleague (or the person acting, where the rule allows) signs one act at the moment it
happens by re-authenticating with password and authenticator code (security.md §4 software rules 2–3).

Used wherever a rule names a person who must decide or witness, so that "a name picked from a list" is
never enough: the controlled-drug waste witness, the second person who checks an IV/IM dose or a pump rate
change, the prescriber who decides past a dose limit or a discharge criterion.

``signature_errors`` adds ``{field: reason}`` for every problem (errors name the field the edge shows them
beside); it never raises, so a caller reports every bad input at once. The authenticator code is checked
only after the password, since a TOTP code is accepted once and a wrong password must not use it up.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from ketaclinic.accounts.models import Site, User
from ketaclinic.core.access import ROLE_LABELS


@dataclass(frozen=True, slots=True)
class Signature:
    """What the edge collected for one co-signer: who (None when not chosen), password and code."""

    signer: User | None
    password: str = ""
    code: str = ""

    @property
    def given(self) -> bool:
        return self.signer is not None or bool(self.password) or bool(self.code)


def _code_accepted(user: User, code: str) -> bool:
    from django_otp import devices_for_user

    code = code.strip().replace(" ", "")
    return any(
        d.verify_token(code)
        for d in devices_for_user(user, confirmed=True)
        if d.__class__.__name__ == "TOTPDevice"
    )


def signature_errors(
    *,
    signature: Signature,
    actor: User,
    roles: Collection[str],
    field: str,
    errors: dict[str, str],
    purpose: str,
    must_differ: bool,
    site: Site | None = None,
) -> User | None:
    """Check one co-signature; returns the signer when it is valid (and adds nothing to ``errors``).

    ``roles``: who may sign; ``must_differ``: the signer must be someone other than ``actor`` (a second
    person); ``site``: the signer must work at that site (or all sites)."""
    signer = signature.signer
    who = " or ".join(ROLE_LABELS.get(r, r).lower() for r in sorted(roles))
    if signer is None:
        errors[field] = f"{purpose}: choose the {who} who signs"
        return None
    if must_differ and signer.pk == actor.pk:
        errors[field] = f"{purpose}: the signer must be someone other than you"
        return None
    if (
        signer.organization_id != actor.organization_id
        or not signer.is_active
        or getattr(signer, "is_service", False)
        or signer.role not in roles
    ):
        errors[field] = f"{purpose}: {signer.display_name} is not an active {who} of this clinic"
        return None
    if site is not None and not (
        signer.all_sites or signer.role == "admin" or signer.sites.filter(pk=site.pk).exists()
    ):
        errors[field] = f"{purpose}: {signer.display_name} does not work at {site.name}"
        return None
    if not (signer.check_password(signature.password) and _code_accepted(signer, signature.code)):
        errors[f"{field}_password"] = (
            f"{purpose}: {signer.display_name}'s password or authenticator code was not accepted"
        )
        return None
    return signer


def posted_signature(post: Mapping[str, str], prefix: str, organization_id: int) -> Signature | None:
    """A co-signature as a form posts it (``_signature.html``): ``<prefix>`` (the colleague's id),
    ``<prefix>_password`` and ``<prefix>_code``; None when nothing of it was filled in."""
    raw = (post.get(prefix) or "").strip()
    password = post.get(f"{prefix}_password") or ""
    code = post.get(f"{prefix}_code") or ""
    if not raw and not password and not code:
        return None
    signer = (
        User.objects.filter(pk=int(raw), organization_id=organization_id).first() if raw.isdigit() else None
    )
    return Signature(signer, password, code)
