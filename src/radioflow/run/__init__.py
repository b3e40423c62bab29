"""radioflow.run: executing recipes.

* :mod:`.api` -- ``prepare_run(args, ...) -> PreparedRun`` (load, pick, prevalidate),
  ``describe``, ``list_runs``: what the ``run``/``doc``/``runs`` commands do.
* :mod:`.runner` -- ``Runner(doc, rdef, params, backend=..., options=RunOptions(...)).run()``.
* :mod:`.selection` -- ``-s``/``-k``/``-t``/``--skip-tags``/``-e`` and ``always``/``never`` tags.
* :mod:`.records` -- SQLite run records (``.radioflow/runs.db``) and resume hashes.
* :mod:`.progress` -- live step display.
* :mod:`.execute` -- running one cab invocation (every backend calls it).

Submodules are imported on demand (the CLI must start fast).
"""
