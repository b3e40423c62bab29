"""Where step logs are written: radioflow's own layout, or Stimela's ``opts.log`` when a recipe
file sets it.

Default: ``<workdir>/.radioflow/logs/<run id>/<step>.log``, one file per step. With an
``opts.log`` section (Stimela's keys ``dir``, ``name``, ``ext``, ``nest``, ``symlink``,
``enable``) the file is ``dir/name+ext`` with ``{config.run.datetime}``-style substitutions,
``name`` defaulting to ``log-{info.fqname}``; a step nested deeper than ``nest`` levels writes
into its ancestor's file (0: one file per recipe, 1: per step, ...); ``symlink`` names a link,
beside the log directory, that points at it (``logs`` -> the latest run's directory).
"""
from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ..errors import ValidationError
from ..recipe.formula import FormulaError
from ..recipe.substitute import substitute

_UNSAFE = re.compile(r"[^a-zA-Z0-9_./-]")


def run_time_info() -> dict[str, str]:
    """``config.run`` date/time entries as Stimela names them (``datetime`` = ``YYYYmmdd-HHMMSS``)."""
    ds, ts = time.strftime("%Y%m%d"), time.strftime("%H%M%S")
    return {"date": ds, "time": ts, "datetime": f"{ds}-{ts}"}


@dataclass
class LogLayout:
    """Computes a step's log path; ``opts`` is the recipe files' ``opts.log`` section, or None."""

    workdir: str
    run_id: str
    opts: Mapping[str, Any] | None = None
    where: str = "opts.log"
    _dirs: set[str] = field(default_factory=set)

    @property
    def default_dir(self) -> Path:
        return Path(self.workdir, ".radioflow", "logs", self.run_id)

    @property
    def stimela(self) -> bool:
        return self.opts is not None and bool(self.opts) and bool(self.opts.get("enable", True))

    def path(self, fqname: str, ns: Mapping[str, Any]) -> str:
        """The log file of step ``fqname`` (``ns``: the substitution namespace, with ``config``)."""
        if not self.stimela:
            return str(self.default_dir / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', fqname)}.log")
        assert self.opts is not None
        nest = int(self.opts.get("nest", 999))
        parts = fqname.split(".")
        owner = ".".join(parts[: nest + 1])           # nesting deeper than 'nest' shares the ancestor's file
        info = {**dict(ns.get("info") or {}), "fqname": owner}
        local = {**ns, "info": info, "self": info}
        text = os.path.join(str(self.opts.get("dir") or "."),
                            str(self.opts.get("name") or "log-{info.fqname}") + str(self.opts.get("ext", ".txt")))
        try:
            resolved = str(substitute(text, local, where=self.where))
        except FormulaError as exc:
            raise ValidationError(f"{self.where}: log file name '{text}': {exc}") from None
        resolved = _UNSAFE.sub("_", os.path.expanduser(resolved))
        full = resolved if os.path.isabs(resolved) else os.path.join(self.workdir, resolved)
        self._link(os.path.dirname(full))
        return full

    def _link(self, logdir: str) -> None:
        """Point ``symlink`` (beside the log directory) at it, once per directory."""
        if logdir in self._dirs:
            return
        self._dirs.add(logdir)
        name = (self.opts or {}).get("symlink")
        if not name:
            return
        os.makedirs(logdir, exist_ok=True)
        link = os.path.join(os.path.dirname(os.path.abspath(logdir)), str(name))
        if os.path.abspath(link) == os.path.abspath(logdir) or (os.path.lexists(link) and not os.path.islink(link)):
            return                             # as Stimela: a real file or directory of that name is left alone
        tmp = f"{link}.tmp-{os.getpid()}"
        try:
            os.symlink(os.path.basename(os.path.abspath(logdir)), tmp)
            os.replace(tmp, link)              # atomic: the link always points at a whole directory
        except OSError:
            if os.path.lexists(tmp):
                os.unlink(tmp)
