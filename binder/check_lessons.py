"""Run every lesson top to bottom with nbclient, in the environment this interpreter belongs to.

``make binder-check`` runs it in a fresh venv built from binder/requirements.txt exactly as
repo2docker builds Binder's image (``pip install -r binder/requirements.txt``, then
``binder/postBuild``), so a lesson that fails on Binder fails here first.  Also opens the app
notebook (app/explorer.ipynb) the same way.  Exit status 1 if anything failed.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    notebooks = sorted((REPO / "notebooks").glob("*.ipynb")) + [REPO / "app" / "explorer.ipynb"]
    failed = []
    for path in notebooks:
        nb = nbformat.read(path, as_version=4)
        start = time.perf_counter()
        # In a copy of the notebook's folder, as on Binder (lesson 8 reads data/bp_trial.csv next to
        # itself), so that a lesson writing files next to itself leaves the repository alone.
        with tempfile.TemporaryDirectory() as tmp:
            where = Path(shutil.copytree(path.parent, Path(tmp) / path.parent.name))
            try:
                NotebookClient(nb, timeout=600, kernel_name="python3",
                               resources={"metadata": {"path": str(where)}}).execute()
            except Exception as exc:
                failed.append(path.name)
                print(f"FAILED {path.relative_to(REPO)}: {type(exc).__name__}: {str(exc)[-1500:]}", flush=True)
                continue
        errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
                  if o.get("output_type") == "error"]
        if errors:
            failed.append(path.name)
            print(f"FAILED {path.relative_to(REPO)}: error output {errors[0].get('ename')}", flush=True)
        else:
            print(f"ok     {path.relative_to(REPO)} ({time.perf_counter() - start:.0f} s)", flush=True)
    print(f"{len(notebooks) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
