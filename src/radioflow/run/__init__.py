"""radioflow.run: executing recipes.

* :mod:`.api` -- ``prepare_run(args, ...) -> PreparedRun`` (load, pick, prevalidate),
  ``describe``, ``list_runs``: what the ``run``/``doc``/``runs`` commands do.
* :mod:`.runner` -- ``Runner(doc, rdef, params, backend=..., options=RunOptions(...)).run()``:
  steps in order, nested recipes, scatter; it composes
  :mod:`.frames` (frames and the namespaces formulas see, assignments, assertions),
  :mod:`.loops` (for-loops, scatter batches, rounds across callers),
  :mod:`.engines` (which backend runs a step; ``backend`` sections),
  :mod:`.resume` (input fingerprints, step hashes, work already done) and
  :mod:`.recording` (run/step rows, step log footers, reports).
* :mod:`.selection` -- ``-s``/``-k``/``-t``/``--skip-tags``/``-e`` and ``always``/``never`` tags.
* :mod:`.records` -- SQLite run records (``.radioflow/runs.db``).
* :mod:`.progress` -- live step display.

One cab invocation is executed by :mod:`radioflow.invoke` (the layer below every backend).
Submodules are imported on demand (the CLI must start fast).
"""
