"""Executing one cab invocation: argument policies, wranglers, output capture, serialisation.

This is the bottom layer of the engine: ``run/`` (the runner), ``backends/`` (where an
invocation runs) and ``cabs/`` (built-in steps) import it; it imports none of them.
"""
from .invocation import Invocation, Result

__all__ = ["Invocation", "Result"]
