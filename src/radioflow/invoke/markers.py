"""Markers a cab prints on its output that the runner recognises."""
from __future__ import annotations

#: Prefix of a summary line: kept in the step log and also shown on the console by the runner.
SUMMARY_MARK = "» "
