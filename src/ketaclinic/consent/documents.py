"""Signed consent documents: checking what arrives and keeping it private on the server.

* **What is accepted.** A drawn signature is a PNG of at most ``MAX_SIGNATURE_BYTES`` with ink on it (a blank
  box is refused). A scan of a signed paper form is a PDF, PNG or JPEG of at most ``MAX_SCAN_BYTES``. The
  type is read from the file's first bytes, not from its name or the browser's word for it, and an image must
  open as one; anything else is refused naming the limit.
* **Where it is kept.** Under ``<var>/consent-documents/org-<id>/`` with a random name, the directories 0700
  and each file created 0600 (``O_EXCL``: never over another file). Nothing in it is served by the web server:
  the only way to read a document is the access-checked, audited view (``consent.views.document``). The
  database row keeps the SHA-256, so a file changed on disk is reported instead of shown.
* **Backups.** The directory is part of the clinic's records: back it up with the database (docs/operations.md).

A document written in a request whose transaction then rolls back stays on disk unreferenced; it is never
shown (no row points at it) and ``ketaclinic check`` does not count it.
"""

from __future__ import annotations

import hashlib
import io
import os
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from django.conf import settings

MAX_SIGNATURE_BYTES: Final = 512 * 1024
MAX_SCAN_BYTES: Final = 10 * 1024 * 1024
MAX_IMAGE_PIXELS: Final = 40_000_000  # a 600-dpi A4 page is ~35 Mpx; more is not a scan
MIN_INK_PIXELS: Final = 60  # fewer dark pixels than this is an empty signature box (a dot, a slip)

PDF, PNG, JPEG = "application/pdf", "image/png", "image/jpeg"
SCAN_TYPES: Final = {PDF: "pdf", PNG: "png", JPEG: "jpg"}
_MAGIC: Final = ((b"%PDF-", PDF), (b"\x89PNG\r\n\x1a\n", PNG), (b"\xff\xd8\xff", JPEG))


class DocumentRefused(ValueError):
    """The file cannot be kept as consent evidence; the message says why and the limit."""


@dataclass(frozen=True, slots=True)
class Checked:
    data: bytes
    content_type: str
    sha256: str


def sniff(data: bytes) -> str | None:
    return next((kind for magic, kind in _MAGIC if data.startswith(magic)), None)


def _size(data: bytes, limit: int, what: str) -> None:
    if not data:
        raise DocumentRefused(f"the {what} is empty")
    if len(data) > limit:
        raise DocumentRefused(
            f"the {what} is {len(data) / 1024 / 1024:.1f} MB; the limit is {limit / 1024 / 1024:g} MB"
            if limit >= 1024 * 1024
            else f"the {what} is {len(data) // 1024} KB; the limit is {limit // 1024} KB"
        )


def _open_image(data: bytes, what: str) -> object:
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as probe:
                probe.verify()
            image = Image.open(io.BytesIO(data))
            image.load()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise DocumentRefused(f"the {what} is not a readable image") from None
    if image.width * image.height > MAX_IMAGE_PIXELS:
        raise DocumentRefused(
            f"the {what} is {image.width}×{image.height} pixels; the limit is {MAX_IMAGE_PIXELS // 1_000_000} "
            "megapixels"
        )
    return image


def check_signature(data: bytes) -> Checked:
    """A drawn signature: a PNG with ink on it."""
    from PIL import Image

    _size(data, MAX_SIGNATURE_BYTES, "signature")
    if sniff(data) != PNG:
        raise DocumentRefused("the signature must be a PNG image (as the signature box sends it)")
    image = _open_image(data, "signature")
    assert isinstance(image, Image.Image)
    # Ink: visible, dark pixels (the box draws dark strokes on a clear or white background).
    rgba = image.convert("RGBA")
    alpha = rgba.getchannel("A").point(lambda a: 255 if a > 128 else 0)
    dark = rgba.convert("L").point(lambda v: 255 if v < 128 else 0)
    from PIL import ImageChops

    ink = ImageChops.multiply(alpha, dark).histogram()[255]
    if ink < MIN_INK_PIXELS:
        raise DocumentRefused("the signature box is empty: the patient signs with a finger, stylus or mouse")
    return Checked(data=data, content_type=PNG, sha256=hashlib.sha256(data).hexdigest())


def check_scan(data: bytes, declared_type: str = "") -> Checked:
    """A scan of a signed paper form: PDF, PNG or JPEG, read from its first bytes."""
    _size(data, MAX_SCAN_BYTES, "file")
    kind = sniff(data)
    if kind is None:
        raise DocumentRefused("the file must be a PDF, PNG or JPEG scan of the signed form")
    declared = declared_type.split(";")[0].strip().lower()
    if declared and declared not in ("application/octet-stream", kind):
        raise DocumentRefused(f"the file says it is {declared} but its content is {kind}")
    if kind == PDF:
        if b"%%EOF" not in data[-2048:]:
            raise DocumentRefused("the PDF is incomplete (no end-of-file marker): scan or upload it again")
    else:
        _open_image(data, "scan")
    return Checked(data=data, content_type=kind, sha256=hashlib.sha256(data).hexdigest())


# --- the private store ----------------------------------------------------------------------------------


def root() -> Path:
    return Path(settings.VAR_DIR) / "consent-documents"


def _private_dir(path: Path) -> None:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)


def store(organization_id: int, checked: Checked) -> str:
    """Write the document with mode 0600; returns its name in the store (``org-<id>/<random>.<ext>``)."""
    folder = root() / f"org-{int(organization_id)}"
    _private_dir(root())
    _private_dir(folder)
    name = f"org-{int(organization_id)}/{uuid.uuid4().hex}.{SCAN_TYPES[checked.content_type]}"
    path = root() / name
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        os.fchmod(fd, 0o600)  # whatever the umask
        with os.fdopen(fd, "wb") as handle:
            fd = -1
            handle.write(checked.data)
            handle.flush()
            os.fsync(handle.fileno())
    finally:
        if fd != -1:
            os.close(fd)
    return name


def load(name: str, sha256: str) -> bytes:
    """The document's bytes, refused when the file is missing, outside the store, or changed since signing."""
    base = root().resolve()
    path = (base / name).resolve()
    if base not in path.parents:
        raise DocumentRefused("the document is not in the consent store")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DocumentRefused(
            "the signed document is missing from the consent store: restore it from the backup"
        ) from None
    if hashlib.sha256(data).hexdigest() != sha256:
        raise DocumentRefused(
            "the signed document on disk does not match the one recorded: it was changed after signing"
        )
    return data
