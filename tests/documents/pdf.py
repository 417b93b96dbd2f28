"""The text a PDF of c2c's draws: its page streams, uncompressed."""

from __future__ import annotations

import re
import zlib


def page_text(pdf: bytes) -> bytes:
    """Every Flate-compressed stream of ``pdf``, uncompressed and joined (fpdf2 compresses
    each page's drawing operators, where the text is)."""
    streams = re.findall(rb"/FlateDecode.*?stream\r?\n(.*?)\r?\nendstream", pdf, re.DOTALL)
    return b"".join(zlib.decompress(s) for s in streams)
