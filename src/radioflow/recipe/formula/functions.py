"""Formula functions: lazy ones (IF, IFSET, TRY...) get unevaluated argument nodes, eager
ones (LEN, GLOB, BASENAME...) get values. ``ARITY`` lets :func:`check` validate calls ahead.
"""
from __future__ import annotations

import difflib
import glob
import logging
import os.path
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .values import (
    MAX_SEQ,
    UNCATCHABLE,
    UNSET,
    EvalFailure,
    FormulaAbort,
    FormulaError,
    Missing,
    short_repr,
    unset_if_missing,
)

if TYPE_CHECKING:
    from .evaluator import Evaluator

log = logging.getLogger("radioflow.recipe.formula")   # LOG*() messages (shown by run.progress)

# lazy functions: receive the evaluator and the unevaluated argument nodes ---------------------

def _fn_if(ev: Evaluator, args: tuple) -> Any:
    """IF(cond, if_true[, if_false[, if_unset]]); as in Stimela, a missing if_false is True (so
    ``=IF(cond, LOG(...))`` holds as a preamble/epilogue assertion when cond is false)."""
    ev.check_arity("IF", args, 2, 4)
    cond = ev.loose(args[0])
    if isinstance(cond, Missing):
        return ev.strict(args[3]) if len(args) == 4 else UNSET
    if ev.truth(cond):
        return ev.strict(args[1])
    return ev.strict(args[2]) if len(args) > 2 else True


def _fn_ifset(ev: Evaluator, args: tuple) -> Any:
    ev.check_arity("IFSET", args, 1, 3)
    value = ev.loose(args[0])
    if isinstance(value, Missing) or value is UNSET:
        return ev.strict(args[2]) if len(args) == 3 else UNSET
    if len(args) == 1 or args[1] == ("self",):
        return value
    return ev.strict(args[1])


def _fn_cases(ev: Evaluator, args: tuple) -> Any:
    ev.check_arity("CASES", args, 2, None)
    pairs, default = (args[:-1], args[-1]) if len(args) % 2 else (args, None)
    for i in range(0, len(pairs), 2):
        if ev.truth(ev.strict(pairs[i])):
            return unset_if_missing(ev.loose(pairs[i + 1]))
    if default is None:
        return UNSET
    return unset_if_missing(ev.loose(default))


def _fn_try(ev: Evaluator, args: tuple) -> Any:
    ev.check_arity("TRY", args, 1, None)
    result: Any = UNSET
    for arg in args:
        try:
            result = ev.loose(arg)
        except UNCATCHABLE:
            raise
        except FormulaError:
            result = UNSET
            continue
        if not isinstance(result, Missing) and result is not UNSET:
            return result
    return unset_if_missing(result)


def _fn_valid(ev: Evaluator, args: tuple) -> Any:
    ev.check_arity("VALID", args, 1, 1)
    try:
        value = ev.loose(args[0])
    except UNCATCHABLE:
        raise
    except FormulaError:
        return False
    if isinstance(value, Missing) or value is UNSET:
        return False
    return value


def _fn_nosubst(ev: Evaluator, args: tuple) -> Any:
    ev.check_arity("NOSUBST", args, 1, 1)
    if args[0][0] in ("str", "raw"):
        return args[0][1]
    return ev.strict(args[0])


def _make_abort(fname: str) -> Callable[[Evaluator, tuple], Any]:
    def abort(ev: Evaluator, args: tuple) -> Any:
        ev.check_arity(fname, args, 0, 1)
        message = unset_if_missing(ev.loose(args[0])) if args else ""
        if fname == "ABORT":
            log.critical(f"ABORT: {message}", extra={"rf_summary": False})   # as Stimela: logged at CRITICAL
        raise ev.fail(f"{fname}: {message}", FormulaAbort)
    return abort


LAZY_FUNCTIONS: dict[str, Callable[[Evaluator, tuple], Any]] = {
    "IF": _fn_if, "IFSET": _fn_ifset, "CASES": _fn_cases, "TRY": _fn_try,
    "VALID": _fn_valid, "NOSUBST": _fn_nosubst,
    "ERROR": _make_abort("ERROR"), "ABORT": _make_abort("ABORT"),
}


# eager functions: receive evaluated values --------------------------------------------------

def _need_str(value: Any) -> str:
    if not isinstance(value, str):
        raise EvalFailure(f"expects a string, got {short_repr(value)}")
    return value


def _need_list(value: Any) -> list | tuple:
    if not isinstance(value, (list, tuple)):
        raise EvalFailure(f"expects a list, got {short_repr(value)}")
    return value


def _fn_range(*args: Any) -> list:
    if not all(isinstance(a, int) for a in args):
        raise EvalFailure("expects integer arguments")
    r = range(*args)
    if len(r) > MAX_SEQ:
        raise EvalFailure("range is too long")
    return list(r)


def _fn_minmax(fn: Callable[..., Any]) -> Callable[..., Any]:
    def apply(*args: Any) -> Any:
        if len(args) == 1:
            if not isinstance(args[0], (list, tuple)) or not args[0]:
                raise EvalFailure(f"needs a non-empty list or several values, "
                                   f"got {short_repr(args[0])}")
            return fn(args[0])
        return fn(args)
    return apply


def _path_fn(fn: Callable[[str], Any]) -> Callable[[Any], Any]:
    def apply(value: Any) -> Any:
        return fn(_need_str(value))
    return apply


_LOG_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
               "error": logging.ERROR, "critical": logging.CRITICAL}
_LOG_FLAGS = {"no-repeat", "summary", "no-summary", "only-summary"}


def _log_options(extra: tuple) -> set[str] | None:
    """Stimela's LOG options (``"warning"``, ``"no-repeat, summary"``...), or None if ``extra``
    are not options (then, as radioflow's LOG(a, b, ...), they are joined into the message)."""
    if not extra or not all(isinstance(a, str) for a in extra):
        return None
    opts = {o.strip() for a in extra for o in a.split(",") if o.strip()}
    return opts if opts and opts <= set(_LOG_LEVELS) | _LOG_FLAGS else None


def _make_log(level: int) -> Callable[..., Any]:
    """LOG(message[, options...]) as Stimela's: options give the level (debug ... critical),
    ``no-repeat`` (once per identical message), ``summary``/``no-summary``/``only-summary``
    (repeat at the end of the run; the default for warning and above). Returns the message."""
    def apply(*args: Any) -> Any:
        opts = _log_options(args[1:])
        if opts is None:               # radioflow form: LOG(a, b, ...) logs "a b ..." and returns b
            log.log(level, " ".join(str(a) for a in args))
            return args[-1] if args else ""
        levels = opts & set(_LOG_LEVELS)
        if len(levels) > 1:
            raise EvalFailure(f"LOG(): several levels given: {', '.join(sorted(levels))}")
        lvl = _LOG_LEVELS[levels.pop()] if levels else level
        summary = "summary" in opts or "only-summary" in opts or (lvl >= logging.WARNING and "no-summary" not in opts)
        log.log(lvl, str(args[0]), extra={"rf_no_repeat": "no-repeat" in opts, "rf_summary": summary,
                                          "rf_only_summary": "only-summary" in opts})
        return args[0]
    return apply


def _is_num(x: Any) -> bool:
    return isinstance(x, (bool, int, float, complex))


FUNCTIONS: dict[str, tuple[Callable[..., Any], int, int | None]] = {
    "LIST": (lambda *a: list(a), 0, None),
    "LEN": (len, 1, 1),
    "RANGE": (_fn_range, 1, 3),
    "MIN": (_fn_minmax(min), 1, None),
    "MAX": (_fn_minmax(max), 1, None),
    "GETITEM": (lambda x, i: x[i], 2, 2),
    "SORT": (lambda x: sorted(_need_list(x)), 1, 1),
    "RSORT": (lambda x: sorted(_need_list(x), reverse=True), 1, 1),
    "IS_STR": (lambda x: type(x) is str, 1, 1),
    "IS_NUM": (_is_num, 1, 1),
    "GLOB": (_path_fn(lambda p: sorted(glob.glob(p))), 1, 1),
    "EXISTS": (_path_fn(lambda p: bool(glob.glob(p))), 1, 1),
    "DIRNAME": (_path_fn(os.path.dirname), 1, 1),
    "BASENAME": (_path_fn(os.path.basename), 1, 1),
    "EXTENSION": (_path_fn(lambda p: os.path.splitext(p)[1]), 1, 1),
    "STRIPEXT": (_path_fn(lambda p: os.path.splitext(p)[0]), 1, 1),
    "LOG": (_make_log(logging.INFO), 0, None),
    "LOGINFO": (_make_log(logging.INFO), 0, None),
    "LOGDEBUG": (_make_log(logging.DEBUG), 0, None),
    "LOGWARN": (_make_log(logging.WARNING), 0, None),
    "LOGWARNING": (_make_log(logging.WARNING), 0, None),
    "LOGERROR": (_make_log(logging.ERROR), 0, None),
    "LOG_INFO": (_make_log(logging.INFO), 1, None),
    "LOG_WARNING": (_make_log(logging.WARNING), 1, None),
    "LOG_ERROR": (_make_log(logging.ERROR), 1, None),
    "LOG_CRITICAL": (_make_log(logging.CRITICAL), 1, None),
}

FUNCTION_NAMES: frozenset[str] = frozenset(FUNCTIONS) | frozenset(LAZY_FUNCTIONS)

ARITY: dict[str, tuple[int, int | None]] = {
    **{name: (lo, hi) for name, (_, lo, hi) in FUNCTIONS.items()},
    "IF": (2, 4), "IFSET": (1, 3), "CASES": (2, None), "TRY": (1, None), "VALID": (1, 1),
    "NOSUBST": (1, 1), "ERROR": (0, 1), "ABORT": (0, 1),
}


def unknown_function(fname: str) -> str:
    close = difflib.get_close_matches(fname.upper(), FUNCTION_NAMES, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]}()? " if close else ""
    known = ", ".join(sorted(FUNCTION_NAMES))
    return f"unknown function {fname}() ({hint}known functions: {known})"
