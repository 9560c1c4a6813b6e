"""Benchmark: the kernel's share of a drag in the Explorer's LMM tab, at the default design (40 x 6).

A drag released in the browser reaches the kernel as the points' new columns; the kernel
refits the LMM on the edited copy, prepares the LMM tab and sends its patches (one per
figure) and its tables.  Timed here from the browser's message to the last patch sent, with
a view on the page simulated (each figure widget believes one view is shown, so every patch
is serialised; nothing travels), against a slider release with the LMM tab visible (a new
simulation and the whole analysis).  The browser's share (messages, drawing) is measured by
``tests/e2e/test_drag.py`` in JupyterLab and Notebook 7.

Run:     .venv/bin/python benchmarks/bench_drag.py [--repeat 15]
Target (issue 12): drag release to redrawn plots under 150 ms in the browser; the kernel's
share is printed against that budget.
"""

from __future__ import annotations

import argparse

from _timing import best_of  # one BLAS thread (before numpy loads) and the fastest of n calls

BUDGET_MS = 150.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()

    import numpy as np
    from bokeh.core.serialization import Serializer

    from lmm_teach.widgets import Explorer
    from lmm_teach.widgets.notebook import figures_in

    explorer = Explorer(seed=1)
    explorer.tabs.selected_index = list(explorer.tabs.titles).index("LMM")
    explorer.drag.enabled.value = True
    panel = explorer.lmm_panel
    messages = {"n": 0}
    for view in figures_in(explorer.layout):
        view._view_count = 1          # a view on the page: patches are serialised
        view.send = lambda content, buffers=None: messages.__setitem__("n", messages["n"] + 1)
    widget = next(w for w in figures_in(panel.layout) if w._model is panel.fit_figure)
    source = panel.fit_sources["points"]
    step = {"k": 0}

    def drag():
        # What jupyter_bokeh hands the kernel on release: the points, one moved up.
        cols = {k: list(v) for k, v in source.data.items()}
        k = step["k"] % len(cols["y"])
        step["k"] += 1
        cols["y"][k] += 5.0
        entries = [[key, Serializer(deferred=False).encode(np.asarray(v)) if key in ("x", "y", "row") else v]
                   for key, v in cols.items()]
        widget._sync_model(widget, {"event": "jsevent", "kind": "ModelChanged", "model": {"id": source.id},
                                    "attr": "data", "new": {"type": "map", "entries": entries}}, [])

    def slider():
        assert explorer.refresh()

    drag()
    n0 = messages["n"]
    drag()
    per_drag = messages["n"] - n0
    t_drag = best_of(drag, args.repeat)
    assert explorer.result.edits > 0 and explorer.result.__dict__["analysis"].__class__.__name__ == "Deferred"
    t_slider = best_of(slider, args.repeat)
    print(f"data: 40 subjects x 6 visits (Design(), seed 1), {len(explorer.result.data)} measurements; "
          f"best of {args.repeat}")
    print(f"one drag, kernel (refit, LMM tab, patches)   {t_drag * 1e3:7.1f} ms, {per_drag} comm messages")
    print(f"one slider release, LMM tab visible          {t_slider * 1e3:7.1f} ms")
    print(f"ratio drag / slider release: {t_drag / t_slider:.2f}")
    print(f"kernel's share of the {BUDGET_MS:.0f} ms budget: {t_drag * 1e3 / BUDGET_MS:.2f}")


if __name__ == "__main__":
    main()
