"""What the panels add to the notebook page: one stylesheet and the sliders' accessible names.

Colours come from JupyterLab's theme variables (``--jp-layout-color*``,
``--jp-content-font-color*``, ``--jp-border-color*``), so the light, dark and
high-contrast themes all read well; the bokeh figures keep their light
background and sit on a framed light card (``.lmm-bokeh``), on purpose: their
text is drawn on a canvas, in the figure's own colours.

ipywidgets renders a slider's handle (``role="slider"``) without a name: its
``description`` label is not tied to the handle, and a screen reader announced
every control as a bare "slider".  :data:`PAGE_JS` ties each handle inside an
lmm_teach panel to its label (``aria-labelledby``) and hides that label from
the reading order, so each name is read once, by the control.  It runs once
per page, from the same output that loads BokehJS (:func:`page_setup`), and
watches the page for sliders drawn later (a tab opened, a section unfolded).

Nothing here is needed for the numbers: a page without it still works, less
accessibly.
"""

from __future__ import annotations

import json

__all__ = ["PAGE_CSS", "PAGE_JS", "style_widget", "page_setup"]

#: The stylesheet of every lmm_teach panel (scoped to its classes).
PAGE_CSS = """
/* result tabs as wide as their titles (144 px each cut "Your own data") */
.lmm-tabs { --jp-widgets-horizontal-tab-width: auto; }
/* the titles of the tabs not shown: the widget stylesheet's grey reads 4.2:1 in JupyterLab Dark */
.lmm-tabs .lm-TabBar-tab:not(.lm-mod-current), .lmm-tabs .lm-TabBar-tab:not(.lm-mod-current) .lm-TabBar-tabLabel
    { color: var(--jp-ui-font-color1) !important; opacity: 1 !important; }
/* a figure's card is as wide as the figure, not the column */
.lmm-bokeh { align-self: flex-start; }
/* wide screens: figures side by side in the results (text and tables keep whole rows) */
.lmm-results .widget-tab-contents > .lmm-panel { flex-flow: row wrap; align-items: flex-start;
    column-gap: 12px; }
.lmm-results .widget-tab-contents > .lmm-panel > :not(.lmm-bokeh) { flex: 1 1 100%; }
/* bokeh figures: a framed light card in every theme (their text is drawn in the figure's colours) */
.lmm-bokeh { background: #ffffff; border: 1px solid var(--jp-border-color2, #ccc); border-radius: 4px;
             padding: 4px; box-sizing: content-box; }
/* the results beside the controls stay in view while the controls scroll past */
.lmm-explorer-body { overflow: visible !important; }
.lmm-results { position: sticky; top: 0; align-self: flex-start; z-index: 1;
               background: var(--jp-layout-color0, #fff); }
.jp-OutputArea-output:has(.lmm-explorer), .jp-Cell-outputWrapper:has(.lmm-explorer),
.jp-OutputArea:has(.lmm-explorer), .jp-OutputArea-child:has(.lmm-explorer),
.lmm-explorer, .lmm-explorer > .widget-box { overflow: visible !important; }
/* section headings of the controls: a heading that folds, not a big button */
.lmm-group-toggle.jupyter-button { text-align: left; font-weight: bold; background: transparent;
    box-shadow: none; color: var(--jp-content-font-color1); padding-left: 0; }
.lmm-group-toggle.jupyter-button.mod-active { background: transparent; box-shadow: none; }
.lmm-group-toggle.jupyter-button:hover { background: var(--jp-layout-color2); }
"""

#: Runs once per page: the stylesheet, and the sliders' names (see the module docstring).
PAGE_JS = """
(function () {
  if (window.__lmmTeachPage) { return; }
  window.__lmmTeachPage = true;
  var style = document.createElement('style');
  style.id = 'lmm-teach-style';
  style.textContent = __CSS__;
  document.head.appendChild(style);
  var n = 0;
  function name(root) {
    root.querySelectorAll('.lmm-panel .widget-slider, .lmm-panel.widget-slider').forEach(function (el) {
      var handle = el.querySelector('.noUi-handle');
      var label = el.querySelector(':scope > label.widget-label');
      if (!handle || !label || handle.getAttribute('aria-labelledby')) { return; }
      if (!label.id) { n += 1; label.id = 'lmm-slider-name-' + Date.now().toString(36) + '-' + n; }
      handle.setAttribute('aria-labelledby', label.id);
      label.setAttribute('aria-hidden', 'true');
    });
  }
  var pending = false;
  new MutationObserver(function () {
    if (pending) { return; }
    pending = true;
    requestAnimationFrame(function () { pending = false; name(document); });
  }).observe(document.body, {childList: true, subtree: true});
  name(document);
})();
""".replace("__CSS__", json.dumps(PAGE_CSS))


def style_widget():
    """A hidden HTML widget carrying :data:`PAGE_CSS` (the browser applies a hidden <style>)."""
    import ipywidgets as widgets

    w = widgets.HTML(f"<style>{PAGE_CSS}</style>", layout=widgets.Layout(display="none"))
    w.add_class("lmm-style")
    return w


def page_setup() -> None:
    """Send :data:`PAGE_JS` to the front end (in a notebook; called where BokehJS is loaded)."""
    from IPython.display import Javascript, display

    display(Javascript(PAGE_JS))
