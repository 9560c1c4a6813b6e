"""Walking an ipywidgets tree from plain Python, as the browser tests' selectors would."""

from __future__ import annotations


def walk(widget):
    """The widget and every widget below it (through ``children`` of boxes and tabs)."""
    yield widget
    for child in getattr(widget, "children", ()) or ():
        yield from walk(child)


def css_classes(widget) -> set[str]:
    """Every CSS class in a widget tree (what browser tests can find)."""
    return {c for w in walk(widget) for c in getattr(w, "_dom_classes", ())}
