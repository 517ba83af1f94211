"""The live board (issue 5 item 6): a page per site and its server-sent event stream."""

from __future__ import annotations

from django.urls import path

from ketaclinic.chairside import board

urlpatterns: list[object] = [
    path("board/", board.board_index, name="board_index"),
    path("board/<slug:site_code>/", board.board_page, name="board"),
    path("board/<slug:site_code>/stream/", board.board_stream, name="board_stream"),
]
