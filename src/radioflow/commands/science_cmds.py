"""CLI: simulate, image, vis info, demo."""
from __future__ import annotations

from ..cli import app, vis_app  # noqa: F401
