"""Warnings and notes as small records: the text a learner reads, plus a key code can test.

A :class:`Note` is a ``str`` (so ``result.warnings`` stays a tuple of str for
existing code) that also carries ``kind`` (what sort of message it is, e.g.
``"not_computed"``, ``"omnibus"``, ``"dropout"``) and ``about`` (the key of the
method it concerns, or None).  Code decides on ``kind`` and ``about``, never on
the wording.

>>> n = Note("The RM-ANOVA could not be computed: too few subjects", kind="not_computed", about="anova")
>>> n.kind, n.about, n.startswith("The RM-ANOVA")
('not_computed', 'anova', True)
"""

from __future__ import annotations

__all__ = ["Note", "kind_of"]


class Note(str):
    """A message with a ``kind`` and the method it is ``about`` (see the module docstring)."""

    __slots__ = ("kind", "about")

    def __new__(cls, text: str, kind: str = "note", about: str | None = None):
        obj = super().__new__(cls, text)
        obj.kind = kind
        obj.about = about
        return obj

    def __reduce__(self):
        return (Note, (str(self), self.kind, self.about))

    def __repr__(self) -> str:
        return f"Note({str(self)!r}, kind={self.kind!r}, about={self.about!r})"


def kind_of(message) -> str:
    """The ``kind`` of a message (``"note"`` for a plain str)."""
    return getattr(message, "kind", "note")
