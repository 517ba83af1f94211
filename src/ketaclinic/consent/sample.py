"""A drawn signature for the demo clinic and the tests: a PNG of a handwriting-like stroke made from a name,
as the tablet's signature box would send it. Never used for a real patient."""

from __future__ import annotations

import io
import math

from PIL import Image, ImageDraw


def drawn_signature(name: str, *, width: int = 600, height: int = 200) -> bytes:
    """A transparent PNG with one dark, looping stroke whose shape follows the letters of ``name``."""
    image = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    pen = ImageDraw.Draw(image)
    letters = [c for c in name.lower() if c.isalpha()] or ["x"]
    step = (width - 80) / (len(letters) * 8)
    points = []
    for i in range(len(letters) * 8):
        letter = letters[i // 8]
        lift = (ord(letter) - 96) / 26
        x = 40 + i * step
        y = height / 2 - math.sin(i * 0.9) * (25 + 35 * lift) - (10 if i % 8 == 0 else 0)
        points.append((x, y))
    pen.line(points, fill=(17, 17, 17, 255), width=4, joint="curve")
    pen.line([(40, height * 0.78), (width - 60, height * 0.74)], fill=(17, 17, 17, 255), width=3)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()
