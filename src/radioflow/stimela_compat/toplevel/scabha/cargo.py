"""``Parameter``: the schema object dynamic-schema functions create (fields as Stimela's)."""
from __future__ import annotations

from typing import Any


class Parameter:
    """A parameter schema given by keywords (``dtype``, ``info``, ``default``, ``required``, ...)."""

    def __init__(self, **fields: Any) -> None:
        self.__dict__.update(fields)

    def to_dict(self) -> dict[str, Any]:
        """The keywords it was built with."""
        return dict(self.__dict__)

    def __repr__(self) -> str:
        return f"Parameter({', '.join(f'{k}={v!r}' for k, v in self.__dict__.items())})"
