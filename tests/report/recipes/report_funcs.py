"""Python cab functions of the report tests (tests/report/recipes is put on sys.path by the runner)."""
from __future__ import annotations


def tag(window: int, api_token: str) -> dict:
    """A scatter iteration that uses a secret (it must never appear in a report)."""
    print(f"tagging window {window} with token {api_token}")
    print(f"» window {window} tagged")
    return {"label": f"window-{window}"}


def boom(message: str) -> dict:
    """A step that fails with ``message``."""
    print("about to fail")
    raise ValueError(message)
