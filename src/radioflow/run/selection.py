"""Which steps run: ``-s``/``-k``/``-t``/``--skip-tags``/``-e`` and the ``always``/``never`` tags.

The rules are Stimela 2's. The recipe and its nested recipes form a tree of steps (pre-order,
names ``recipe.step``, ``recipe.sub.step``). Options name steps relative to the root recipe,
optionally inside nested ones: ``step``, ``from:to``, ``from:``, ``:to``, ``sub.step``,
``sub.from:to``; tags are ``tag`` (steps of the root recipe) or ``sub.tag``; commas separate
several values. Each option marks nodes with a status:

* ``-t``: *enabled*, ``--skip-tags``: *disabled*, tag ``always``: *weakly enabled*,
  tag ``never``: *weakly disabled*;
* ``-s``: one step *enabled* (and unskipped), a range *weakly enabled*; ``-k`` likewise
  *disabled* / *weakly disabled*; ``-e``: ignore the step's ``skip``/``skip_if_outputs``;
* the strongest status wins (disabled > enabled > weakly disabled > weakly enabled);
  disabled states pass down to sub-steps, enabled states make their parents run;
* unmarked steps run when no ``-s``/``-t`` is given, else only under an enabled parent.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..errors import UsageError

if TYPE_CHECKING:
    from ..recipe.validate import RecipeDef

_HIERARCHY = ("disabled", "enabled", "weakly_disabled", "weakly_enabled")


@dataclass
class Selection:
    """Step-selection options as given on the command line."""

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
    enabled: bool = False          # -e (or -s of this single step): ignore skip / skip_if_outputs
    reason: str = ""


@dataclass
class _Node:
    tags: tuple[str, ...] = ()
    parent: str | None = None
    children: list[str] = field(default_factory=list)
    marks: set[str] = field(default_factory=set)
    status: str | None = None
    unskip: bool = False


def _tree(rdef: RecipeDef) -> dict[str, _Node]:
    nodes: dict[str, _Node] = {rdef.name: _Node()}

    def walk(r: RecipeDef, parent: str) -> None:
        for label, sdef in r.steps.items():
            name = f"{parent}.{label}"
            nodes[name] = _Node(tags=tuple(sdef.step.tags), parent=parent)
            nodes[parent].children.append(name)
            if sdef.recipe is not None:
                walk(sdef.recipe, name)

    walk(rdef, rdef.name)
    return nodes


def _opts(items: list[str], root: str) -> list[str]:
    return [f"{root}.{o.strip()}" for item in items for o in item.split(",") if o.strip()]


def _range(nodes: dict[str, _Node], spec: str, what: str) -> tuple[list[str], bool]:
    """Nodes selected by ``parent.step`` / ``parent.from:to``; (names, is_single_step)."""
    parent, _, sel = spec.rpartition(".")
    names = list(nodes)
    if ":" in sel:
        start, _, stop = sel.partition(":")
        single = False
    else:
        start = stop = sel
        single = True
    first = f"{parent}.{start}" if start else names[1]
    last = f"{parent}.{stop}" if stop else names[-1]
    for name in {first, last}:
        if name not in nodes:
            shown = name.split(".", 1)[1] if "." in name else name
            raise UsageError(f"Step '{shown}' (in {what} {spec.split('.', 1)[1]}) does not exist; steps are: "
                             f"{', '.join(n.split('.', 1)[1] for n in names[1:])}.")
    lo, hi = names.index(first), names.index(last)
    chosen = names[lo:hi + 1]
    if not start:                               # ':to' must not select the parents of 'to'
        ancestors = set()
        node = nodes[last].parent
        while node is not None:
            ancestors.add(node)
            node = nodes[node].parent
        chosen = [n for n in chosen if n not in ancestors]
    return chosen, single


def resolve(rdef: RecipeDef, sel: Selection | None) -> dict[str, Decision]:
    """A :class:`Decision` for every step of the recipe tree, keyed by ``recipe.step[.sub...]``."""
    sel = sel or Selection()
    root = rdef.name
    nodes = _tree(rdef)
    for node in nodes.values():
        if "always" in node.tags:
            node.marks.add("weakly_enabled")
        if "never" in node.tags:
            node.marks.add("weakly_disabled")
    for spec, mark, what in [*((s, "enabled", "-t") for s in _opts(sel.tags, root)),
                             *((s, "disabled", "--skip-tags") for s in _opts(sel.skip_tags, root))]:
        parent, _, tag = spec.rpartition(".")
        hits = [c for c in nodes[parent].children if tag in nodes[c].tags] if parent in nodes else []
        if not hits:
            raise UsageError(f"'{tag}' (in {what}) is not a tag of any step of '{parent}'.")
        for c in hits:
            nodes[c].marks.add(mark)
    for spec in _opts(sel.steps, root):
        chosen, single = _range(nodes, spec, "-s")
        for name in chosen:
            nodes[name].marks.add("enabled" if single else "weakly_enabled")
            nodes[name].unskip |= single
    for spec in _opts(sel.skip, root):
        chosen, single = _range(nodes, spec, "-k")
        for name in chosen:
            nodes[name].marks.add("disabled" if single else "weakly_disabled")
    for spec in _opts(sel.enable, root):
        for name in _range(nodes, spec, "-e")[0]:
            nodes[name].unskip = True
    default = "weakly_disabled" if (sel.steps or sel.tags) else "weakly_enabled"
    _resolve_states(nodes, root, default)
    out: dict[str, Decision] = {}
    for name, node in nodes.items():
        if name == root:
            continue
        run = "enabled" in (node.status or "")
        reason = ""
        if not run:
            if node.status == "disabled":
                reason = "deselected"
            elif "never" in node.tags and "enabled" not in node.marks:
                reason = "tagged 'never'"
            else:
                reason = "not selected"
        out[name] = Decision(run=run, enabled=node.unskip, reason=reason)
    return out


def _resolve_states(nodes: dict[str, _Node], root: str, default: str) -> None:
    for node in nodes.values():
        if node.marks:
            node.status = next(s for s in _HIERARCHY if s in node.marks)
    for strong, weak in (("disabled", "enabled"), ("weakly_disabled", "weakly_enabled")):
        stops = ("enabled",) if strong == "disabled" else ("enabled", "weakly_enabled")
        for node in nodes.values():
            if node.status == strong:
                for child in node.children:
                    nodes[child].status = strong
            elif node.status == weak:
                parent = node.parent
                while parent is not None and parent != root:
                    if nodes[parent].status in stops:
                        break
                    nodes[parent].status = "implicitly_enabled"
                    parent = nodes[parent].parent
    nodes[root].status = nodes[root].status or default
    for name, node in nodes.items():
        if name != root and node.status in (None, "implicitly_enabled"):
            parent_status = nodes[node.parent].status if node.parent else None
            if parent_status in ("enabled", "weakly_enabled"):
                node.status = "weakly_enabled"
            else:
                node.status = node.status or default
