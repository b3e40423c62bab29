"""Python-flavour cab functions used by tests/run/test_execute.py."""
from __future__ import annotations

import os


def add(a: int, b: int = 1) -> dict:
    print(f"adding {a} and {b}")
    return {"total": a + b, "product": a * b}


def scalar(x: float) -> float:
    return x * 10


def boom(x: int) -> dict:
    print("about to fail")
    raise ValueError(f"x must be positive, got {x}")


def where(tag: str) -> dict:
    return {"cwd": os.getcwd(), "env": os.environ.get("RF_EXEC_TEST"), "tag": tag}


def renamed(data_column: str, deconv__niter: int) -> dict:
    return {"got": f"{data_column}:{deconv__niter}"}


def login(user: str, password: str) -> dict:
    print(f"logging in {user} with {password}")
    return {"user": user}
