"""Processing-block states exactly as SDP names them, the allowed transitions and their timestamps.

STARTING -> WAITING -> RUNNING -> FINISHED | FAILED | CANCELLED. A real-time PB goes from
STARTING straight to RUNNING; any live state may end in FAILED or CANCELLED. Every change is
appended to the PB's ``history`` with a UTC timestamp and the reason, so ``sdp status --json``
can show when each state was entered.
"""
from __future__ import annotations

import time
from typing import Any

STARTING, WAITING, RUNNING = "STARTING", "WAITING", "RUNNING"
FINISHED, FAILED, CANCELLED = "FINISHED", "FAILED", "CANCELLED"
STATES = (STARTING, WAITING, RUNNING, FINISHED, FAILED, CANCELLED)
TERMINAL = frozenset({FINISHED, FAILED, CANCELLED})

TRANSITIONS: dict[str, frozenset[str]] = {
    STARTING: frozenset({WAITING, RUNNING, FAILED, CANCELLED}),
    WAITING: frozenset({RUNNING, FAILED, CANCELLED}),
    RUNNING: frozenset({FINISHED, FAILED, CANCELLED}),
    FINISHED: frozenset(),
    FAILED: frozenset(),
    CANCELLED: frozenset(),
}


class TransitionError(Exception):
    """A state change the state machine does not allow (a controller bug, not a user mistake)."""


def transition(pb: dict[str, Any], new: str, reason: str = "", *, now: float | None = None) -> dict[str, Any]:
    """Move the PB record ``pb`` (a dict) to ``new`` in place, timestamped; return it.

    Raises :class:`TransitionError` when ``new`` is not reachable from the current state.
    """
    old = pb.get("state", STARTING)
    if new not in TRANSITIONS.get(old, frozenset()):
        raise TransitionError(f"processing block {pb.get('id')}: {old} -> {new} is not a valid transition")
    at = time.time() if now is None else now
    pb["state"] = new
    pb.setdefault("history", []).append({"state": new, "at": at, "reason": reason})
    if reason and new in (FAILED, CANCELLED):
        pb["reason"] = reason
    return pb


def entered(pb: dict[str, Any], state: str) -> float | None:
    """When the PB entered ``state`` (UNIX time), or None."""
    for h in pb.get("history", []):
        if h["state"] == state:
            return float(h["at"])
    return None
