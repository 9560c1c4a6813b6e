"""Small notebooks that prove the browser checks themselves.

``write_probe(path)`` writes a notebook with what the lessons show: text, an ipywidgets slider
and a bokeh figure through jupyter_bokeh's ``BokehModel``, with BokehJS loaded inline as
``lmm_teach.setup()`` does.  ``broken=True`` loads BokehJS from the CDN instead, the classic
classroom failure: the browser is offline (or the CDN is blocked), the widget exists but the
plot never draws, and the console says so.  The checks must pass on the first and flag the
second.
"""

from __future__ import annotations

from pathlib import Path

import nbformat

KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}

SLIDER = """\
import ipywidgets as widgets

slider = widgets.IntSlider(value=3, min=0, max=10, description="probe")
slider"""

PLOT = """\
import bokeh.io
import bokeh.resources
from bokeh.plotting import figure
from jupyter_bokeh import BokehModel

bokeh.io.output_notebook({resources}, hide_banner=True)
fig = figure(width=320, height=200, title="probe plot")
fig.line([0, 1, 2, 3], [1, 3, 2, 4])
BokehModel(fig)"""


def new_notebook(sources: list[str]) -> nbformat.NotebookNode:
    """A notebook of code cells with the kernelspec set (without it Lab asks for a kernel)."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    nb.metadata["language_info"] = {"name": "python"}
    nb.cells = [nbformat.v4.new_code_cell(src) for src in sources]
    return nb


def write_probe(path: Path, *, broken: bool = False) -> Path:
    """Write the probe notebook to ``path``; ``broken`` loads BokehJS from the CDN."""
    resources = "bokeh.resources.CDN" if broken else "bokeh.resources.INLINE"
    nb = new_notebook(["print('probe ready')", SLIDER, PLOT.format(resources=resources),
                       "probe_done = True", ""])
    # Like the lessons' exercises: input hidden, so no "[n]:" prompt on screen.
    nb.cells[3].metadata["jupyter"] = {"source_hidden": True}
    nbformat.write(nb, path)
    return path


# A widget view whose model does not exist in the kernel: ipywidgets shows "Error displaying
# widget: model not found" (or stays on "Loading widget..." until the manager is restored).
MISSING_WIDGET = """\
from IPython.display import display

display({"application/vnd.jupyter.widget-view+json":
         {"model_id": "0123456789abcdef", "version_major": 2, "version_minor": 0}}, raw=True)"""


# A plot whose data never reach the browser looks like this one: a frame, no axes, no glyphs
# (BokehJS logs "could not set initial ranges"); the canvas exists all the same.
EMPTY_PLOT = PLOT.format(resources="bokeh.resources.INLINE").replace(
    "fig.line([0, 1, 2, 3], [1, 3, 2, 4])", "fig.line(x=[], y=[])").replace("probe plot", "empty probe")


def write_faulty(path: Path) -> Path:
    """A notebook with what the checks must report: stderr, a missing widget, an empty plot,
    a traceback."""
    nb = new_notebook([
        "import sys\nprint('a warning a learner would see', file=sys.stderr)",
        MISSING_WIDGET,
        EMPTY_PLOT,
        "1 / 0",
        "print('never runs: the kernel aborts the queue after an error')",
    ])
    nbformat.write(nb, path)
    return path
