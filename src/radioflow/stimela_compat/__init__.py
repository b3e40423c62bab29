"""Stand-ins for the few ``scabha`` names Stimela cabs and schema functions import.

Python cabs written for Stimela call ``scabha.cab_utils.yield_output`` and dynamic-schema
functions build ``scabha.cargo.Parameter`` objects; scabha itself cannot be installed beside
radioflow (it pins pydantic < 2). :func:`install` puts minimal versions of those modules at the
*end* of ``sys.path``, so a real scabha, when installed, is always the one imported.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_TOPLEVEL = str(Path(__file__).with_name("toplevel"))


def install() -> None:
    """Make ``import scabha`` work (the real package if installed, else the stand-ins)."""
    if _TOPLEVEL in sys.path:
        return
    try:
        found = importlib.util.find_spec("scabha") is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        sys.path.append(_TOPLEVEL)
