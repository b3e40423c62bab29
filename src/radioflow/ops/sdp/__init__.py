"""SDP control plane: scheduling-block instances, processing blocks, buffers, the controller.

Modules by job: ``schema`` (SBI JSON Schema validation, both shapes), ``workflows`` (registry),
``kv``/``sqlite_store``/``etcd_store`` (configuration database), ``configdb`` (SDP records),
``states`` (PB state machine), ``buffers`` (reservations), ``controller`` (the loop) and
``execute`` (the process running one PB's workflow).
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path


def example_path(name: str) -> Path:
    """Path of a shipped example SBI (``sbi-prototype.json``, ``sbi-assign-resources.json``)."""
    return Path(str(resources.files(__package__).joinpath("examples", name)))


EXAMPLES = ("sbi-prototype.json", "sbi-assign-resources.json")
