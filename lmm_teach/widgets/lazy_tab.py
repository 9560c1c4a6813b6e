"""An Explorer tab that redraws only when it is looked at.

The Explorer calls ``explorer_updated(result)`` on every slider release; a tab
built on :class:`FollowsExplorer` keeps the result and draws it when its tab is
visible (now, or when the learner selects it), so hidden tabs cost nothing.
"""

from __future__ import annotations

import traceback

__all__ = ["FollowsExplorer"]


class FollowsExplorer:
    """Mixin for a panel with ``update(lmm_result)`` and ``status`` (a StatusArea) used as an Explorer tab."""

    explorer = None
    _pending = None
    _watching = False

    def follow(self, explorer) -> None:
        self.explorer = explorer

    def _visible(self) -> bool:
        ex = self.explorer
        tabs = getattr(ex, "tabs", None)
        if tabs is None:
            return False
        try:
            return tabs.children.index(self.layout) == tabs.selected_index
        except ValueError:
            return False

    def _watch(self) -> None:
        if not self._watching and getattr(self.explorer, "tabs", None) is not None:
            self.explorer.tabs.observe(self._on_tab, names="selected_index")
            self._watching = True

    def explorer_updated(self, result) -> None:
        """Keep the Explorer's latest fit; draw it if this tab is visible."""
        self._watch()
        self._pending = result.lmm
        if self._visible():
            self._draw_pending()

    def _on_tab(self, change) -> None:
        if self._pending is not None and self._visible():
            self._draw_pending()

    def _draw_pending(self) -> None:
        lmm, self._pending = self._pending, None
        try:
            self.update(lmm)
        except Exception as exc:  # explained in the tab, never a traceback under the cell
            self.error_traceback = traceback.format_exc()
            self.status.problem("This view cannot be drawn for this fit", str(exc) or type(exc).__name__)
