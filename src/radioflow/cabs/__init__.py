"""The built-in cab library: YAML schemas (``radioflow.yml``) and thin Python entry points.

This is the one place where recipes meet the science and data layers. Recipes include the
schemas with ``_include: (radioflow.cabs)radioflow.yml``.
"""
