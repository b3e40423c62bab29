"""radioflow.recipe: the Stimela2-compatible workflow language.

* :mod:`.load` -- ``load_documents(paths) -> Document``: YAML files merged into one namespace
  with ``_include``/``_use``/``_scrub``; every mapping and key keeps its ``file:line``.
* :mod:`.model` -- pydantic models ``Parameter``, ``Cab``, ``Step``, ``ForLoop``, ``Recipe``.
* :mod:`.dtypes` -- dtypes in Python typing syntax, parsed without ``eval``; ``coerce``.
* :mod:`.shorthand` -- ``parse_shorthand``: the ``int = 0 "help"`` / ``File *`` parameter shorthand.
* :mod:`.validate` -- ``compile_recipe(doc, name, params) -> RecipeDef`` (prevalidation, all
  problems at once) and ``validate_values`` (run-time checks).
* :mod:`.formula` (package: parser, evaluator, functions, lazy mapping) / :mod:`.substitute` --
  ``=formulas`` and ``{}`` substitutions.

Submodules are imported on demand (the CLI must start fast).
"""
