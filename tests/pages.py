"""What a reader sees on a page: the text of its elements, without markup, scripts or form values."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

_HIDDEN = ("script", "style", "textarea")


class _Visible(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag in _HIDDEN:
            self._hidden += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN:
            self._hidden -= 1

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.parts.append(data)


def visible(html: str) -> str:
    """The page's text with single spaces: element content outside <script>, <style> and <textarea>
    (attribute values such as an input's name are not shown to the reader)."""
    parser = _Visible()
    parser.feed(html)
    return " ".join(" ".join(parser.parts).split())
