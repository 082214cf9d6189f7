"""Review loop: export candidate visible intervals for annotators (Label Studio project + a
standalone HTML page), push them to / pull them from a running Label Studio, and import the
corrections into the annotation files.

Frame conventions (all intervals are clip-local at the edges, orbit frames inside):

- annotation files, ``reviewed.intervals``: ORBIT frames, 0-based, half-open ``[start, end)``;
- Label Studio ``timelinelabels`` ranges: clip frames, 1-based, inclusive ``{"start", "end"}``;
- the HTML page's JSON, ``intervals``: clip frames, 0-based, half-open ``[start, end)``.
"""

from .model import ReviewError

__all__ = ["ReviewError"]
