"""Which steps run: ``-s``/``-k``/``-t``/``--skip-tags``/``-e`` and the ``always``/``never`` tags.

Rules at each recipe level:

* with ``-s`` (``step``, ``from:to``, ``from:``, ``:to``) or ``-t`` only the named/tagged steps
  run; without either, all steps run;
* ``sub.step`` / ``sub.from:to`` selects ``sub`` here and passes the rest to the sub-recipe;
* a step tagged ``always`` runs even when not selected; one tagged ``never`` runs only when
  named with ``-s``/``-e`` or one of its tags is given with ``-t``;
* ``-k step`` and ``--skip-tags tag`` remove steps; ``-e step`` also overrides ``skip: true``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from ..errors import UsageError


@dataclass
class Selection:
    """Step-selection options (labels are relative to the recipe they apply to)."""

    steps: list[str] = field(default_factory=list)
    skip: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    skip_tags: list[str] = field(default_factory=list)
    enable: list[str] = field(default_factory=list)

    def is_empty(self) -> bool:
        return not (self.steps or self.skip or self.tags or self.skip_tags or self.enable)


@dataclass
class Decision:
    """What to do with one step."""

    run: bool
    enabled: bool = False          # -e: overrides ``skip: true``
    sub: Selection | None = None   # selection passed to a nested recipe
    reason: str = ""


def _split(items: Sequence[str], label: str | None = None) -> tuple[list[str], dict[str, list[str]]]:
    """Items for this level, and items for each sub-recipe (``sub.rest``)."""
    here: list[str] = []
    deeper: dict[str, list[str]] = {}
    for item in items:
        head, dot, rest = item.partition(".")
        if dot and ":" not in head:
            deeper.setdefault(head, []).append(rest)
        else:
            here.append(item)
    return here, deeper


def decide(labels: Sequence[str], tags: dict[str, list[str]], sel: Selection | None,
           where: str = "") -> dict[str, Decision]:
    """Decide for every step label of one recipe level."""
    sel = sel or Selection()
    labels = list(labels)
    index = {lb: i for i, lb in enumerate(labels)}
    steps_here, steps_deeper = _split(sel.steps)
    skip_here, skip_deeper = _split(sel.skip)
    enable_here, enable_deeper = _split(sel.enable)
    for name in [*steps_deeper, *skip_deeper, *enable_deeper, *skip_here, *enable_here]:
        if name not in index:
            raise UsageError(f"Step '{name}' (in -s/-k/-e) does not exist{where}; steps are: {', '.join(labels)}.")
    selected: set[str] = set()
    named: set[str] = set()
    for spec in steps_here:
        if ":" in spec:
            start, _, stop = spec.partition(":")
            for name in (start, stop):
                if name and name not in index:
                    raise UsageError(f"Step '{name}' (in -s {spec}) does not exist{where}; steps are: {', '.join(labels)}.")
            lo = index[start] if start else 0
            hi = index[stop] if stop else len(labels) - 1
            selected.update(labels[lo:hi + 1])
        else:
            if spec not in index:
                raise UsageError(f"Step '{spec}' (in -s) does not exist{where}; steps are: {', '.join(labels)}.")
            selected.add(spec)
            named.add(spec)
    selected.update(steps_deeper)
    named.update(steps_deeper)
    by_tag = {lb for lb in labels if set(tags.get(lb, [])) & set(sel.tags)}
    restricted = bool(sel.steps) or bool(sel.tags)
    out: dict[str, Decision] = {}
    for lb in labels:
        ltags = set(tags.get(lb, []))
        enabled = lb in enable_here
        if lb in skip_here:
            out[lb] = Decision(False, reason="deselected with -k")
        elif ltags & set(sel.skip_tags):
            out[lb] = Decision(False, reason="tag in --skip-tags")
        elif "never" in ltags and not (lb in named or lb in by_tag or enabled):
            out[lb] = Decision(False, reason="tagged 'never'")
        elif not restricted or lb in selected or lb in by_tag or enabled or "always" in ltags:
            sub = Selection(steps=steps_deeper.get(lb, []), skip=skip_deeper.get(lb, []),
                            skip_tags=list(sel.skip_tags), enable=enable_deeper.get(lb, []))
            out[lb] = Decision(True, enabled=enabled, sub=sub)
        else:
            out[lb] = Decision(False, reason="not selected")
    return out
