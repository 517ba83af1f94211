from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture(autouse=True)
def _own_document_store(settings: Any, tmp_path: Any) -> None:
    """Each test keeps its consent documents in its own var directory, so a test can see what was written."""
    settings.VAR_DIR = tmp_path
