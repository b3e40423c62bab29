"""For-loops of recipes: iterations as frames, batches of ``scatter``, rounds across callers.

A looping recipe's iterations run in batches of ``scatter`` (one at a time without it, as an
ICAL cycle needs the previous one). When several frames loop at once (a looping recipe called
from a scatter), round r runs the r-th batch of every frame together, so each cab step still
reaches the backend as one ``backend.map`` across all of them.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

from ..errors import ValidationError
from ..recipe.formula import UNSET
from ..recipe.load import to_plain, where
from ..recipe.substitute import resolve_value
from ..recipe.validate import RecipeDef, is_dynamic
from .frames import Frame, Scopes
from .progress import Progress

#: Runs one step list of a recipe over frames that advance together.
RunSteps = Callable[[RecipeDef, list[Frame]], None]


def run_loops(frs: list[Frame], loop: Any, scopes: Scopes, progress: Progress, run_steps: RunSteps) -> None:
    """Run the for-loop of each frame; the frames' iterations advance together.

    Round r runs the r-th batch of *every* frame in one ``run_steps``; afterwards each frame
    gathers its iterations' outputs.
    """
    rdef = frs[0].rdef
    rounds: list[list[Frame]] = []
    per_frame: list[list[Frame]] = []
    for fr in frs:
        batches = loop_batches(fr, loop, scopes)
        per_frame.append([it for batch in batches for it in batch])
        for r, batch in enumerate(batches):
            if r == len(rounds):
                rounds.append([])
            rounds[r].extend(batch)
    for frames in rounds:
        for it in frames:
            progress.message(f"for loop iteration {it.info['index']}: {loop.var} = {it.recipe.get(loop.var)!r}")
            scopes.recipe_assign(it)
            if loop.display_status:
                note = resolve_value(loop.display_status, scopes.ns(it),
                                     where=where(rdef.raw.get("for_loop"), "display_status"))
                progress.message(f"{it.info.get('fqname', it.fqname)}: {note}")
        run_steps(rdef, frames)
    for fr, iterations in zip(frs, per_frame):
        gather_loop(fr, loop, iterations, scopes)


def loop_batches(fr: Frame, loop: Any, scopes: Scopes) -> list[list[Frame]]:
    """A frame's loop iterations (not yet assigned), in batches of ``scatter``."""
    rdef = fr.rdef
    if isinstance(loop.over, str) and not is_dynamic(loop.over):
        over = fr.recipe.get(loop.over, UNSET)
    else:
        over = resolve_value(to_plain(loop.over), scopes.ns(fr), where=where(rdef.raw.get("for_loop"), "over"))
    if over is UNSET or over is None:
        over = []
    if not isinstance(over, (list, tuple)):
        raise ValidationError(f"{where(rdef.raw.get('for_loop'), 'over', rdef.where)}: recipe '{fr.fqname}': "
                              f"for_loop.over is {over!r}, not a list (a loop over it would run once, silently).")
    scatter = fr.recipe.get("for_loop.scatter", loop.scatter)   # Stimela: a 'for_loop.scatter' input
    if scatter is True or (isinstance(scatter, int) and scatter < 0):
        batch = max(1, len(over))
    elif scatter:
        batch = int(scatter)
    else:
        batch = 1
    batches = []
    for start in range(0, len(over), batch):
        frames = []
        for i in range(start, min(start + batch, len(over))):
            name = f"{fr.fqname}.{i}"       # Stimela's taskname of iteration i
            it = Frame(rdef=rdef, fqname=name, recipe=dict(fr.recipe), root=fr.root, parent=fr.parent,
                       backend=fr.backend, path=fr.path, previous=fr.previous,
                       step_params={k: dict(v) for k, v in fr.step_params.items()},
                       info={**fr.info, "taskname": name, "index": i, "total": len(over)})
            it.recipe[loop.var] = over[i]
            it.recipe[f"{loop.var}@index"] = i
            if fr.root is fr.recipe:
                it.root = it.recipe
            frames.append(it)
        batches.append(frames)
    return batches


def gather_loop(fr: Frame, loop: Any, iterations: list[Frame], scopes: Scopes) -> None:
    """Loop outputs into the frame: gathered lists (``output_elements``), else the last value."""
    rdef = fr.rdef
    gather = loop.output_elements or []
    elements_raw = (rdef.raw.get("for_loop") or {}).get("output_elements")
    for name in rdef.outputs:
        if name in gather:
            if isinstance(gather, Mapping):   # Stimela form: name -> formula, per iteration
                loc = where(elements_raw, name, rdef.where)
                fr.recipe[name] = [resolve_value(to_plain(gather[name]), scopes.ns(it), where=loc)
                                   for it in iterations]
            else:                             # short form: gather the per-iteration values
                fr.recipe[name] = [it.recipe.get(name) for it in iterations]
        elif iterations and name in iterations[-1].recipe:
            fr.recipe[name] = iterations[-1].recipe[name]
    if iterations:
        fr.steps.update(iterations[-1].steps)
        fr.previous = iterations[-1].previous


__all__ = ["RunSteps", "gather_loop", "loop_batches", "run_loops"]
