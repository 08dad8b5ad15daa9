"""Bounds on what an answer may be: one set, applied by the laptop when it accepts an answer
and by HQ when it imports one, so a laptop never stores what HQ would refuse for ever."""

from __future__ import annotations

MAX_TEXT_CHARS = 1_000_000  # one answer's text; a form answer is at most a few pages
MIN_INT, MAX_INT = -(2**63), 2**63 - 1  # SQLite's INTEGER range, and every analysis tool's
MAX_REPEAT_DEPTH = 32  # repeats inside repeats; real forms nest two or three
MAX_NAME_CHARS = 1000  # enumerator names, form ids and versions, timestamps
# Points of one geotrace or geoshape: a walked boundary logged every second for almost
# three hours; what a volunteer types is a few dozen.
MAX_GEO_POINTS = 10_000
