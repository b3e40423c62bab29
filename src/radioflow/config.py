"""Layered configuration.

Precedence (lowest first): built-in defaults < ``~/.config/radioflow/config.yml`` <
``./radioflow.yml`` < ``RADIOFLOW_*`` environment variables < command-line overrides.
Environment keys map to nested keys with ``__``: ``RADIOFLOW_BACKEND__DASK__N_WORKERS=4``
sets ``backend.dask.n_workers``. Values from the environment are parsed as YAML scalars.
"""
from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any, Mapping

import yaml

from .errors import UsageError

DEFAULTS: dict[str, Any] = {
    "data_dir": "./radioflow-data",
    "workdir": ".",
    "layouts": {"path": []},
    "imaging": {"epsilon": 1e-5, "threads": 0},
    "backend": {"select": "local", "local": {"max_workers": 0}},
    "storage": {"s3": {"endpoint_url": None, "region": None}},
}

ENV_PREFIX = "RADIOFLOW_"
# Environment variables with their own meaning, not config keys.
_ENV_RESERVED = {"RADIOFLOW_LAYOUTS", "RADIOFLOW_INCLUDE", "RADIOFLOW_CONFIG"}


def deep_merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``base`` updated recursively by ``over`` (dicts merge, everything else replaces)."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise UsageError(f"Configuration file {where} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise UsageError(f"Configuration file {path} must hold a mapping at the top level.")
    return data


def _scalar(raw: str) -> Any:
    """A YAML scalar, with numbers like ``1e-6`` (a string to YAML 1.1) read as floats."""
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _env_layer(environ: Mapping[str, str]) -> dict[str, Any]:
    layer: dict[str, Any] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or name in _ENV_RESERVED:
            continue
        keys = [k.lower() for k in name[len(ENV_PREFIX):].split("__") if k]
        if not keys:
            continue
        value = _scalar(raw)
        node = layer
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        node[keys[-1]] = value
    return layer


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """Turn ``a.b=value`` strings into a nested mapping (values parsed as YAML scalars)."""
    layer: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise UsageError(f"Configuration override '{item}' must look like key.sub=value.")
        key, raw = item.split("=", 1)
        node = layer
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = _scalar(raw)
    return layer


def load_config(
    overrides: Mapping[str, Any] | None = None,
    *,
    cwd: Path | None = None,
    home: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Build the effective configuration from all layers."""
    environ = os.environ if environ is None else environ
    home = Path(environ.get("HOME", "~")).expanduser() if home is None else home
    cwd = Path.cwd() if cwd is None else cwd
    cfg = copy.deepcopy(DEFAULTS)
    user_file = home / ".config" / "radioflow" / "config.yml"
    project_file = Path(environ["RADIOFLOW_CONFIG"]) if "RADIOFLOW_CONFIG" in environ else cwd / "radioflow.yml"
    for path in (user_file, project_file):
        if path.is_file():
            cfg = deep_merge(cfg, _read_yaml(path))
    cfg = deep_merge(cfg, _env_layer(environ))
    if overrides:
        cfg = deep_merge(cfg, overrides)
    return cfg
