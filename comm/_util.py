"""Small helpers shared by the graph and layer registries (errors, name look-ups, option checks)."""

from __future__ import annotations

import difflib
import importlib
import inspect
from typing import Any, Callable, Iterable


class CommError(ValueError):
    """A one-line, user-facing error about a communication graph, layer or plugin."""


def unknown_name_message(what: str, name: str, choices: Iterable[str]) -> str:
    """One line naming the bad value, the closest valid ones, and the full list."""
    choices = sorted(choices)
    close = difflib.get_close_matches(name, choices, n=3, cutoff=0.5)
    close += [c for c in choices if name and name in c and c not in close][: 3 - len(close)]
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return f"unknown {what} {name!r}.{hint} Valid: {', '.join(choices)}"


def init_options(cls: type, exclude: Iterable[str] = ()) -> dict[str, inspect.Parameter]:
    """The keyword options of ``cls.__init__`` (minus ``self``, ``*args``/``**kwargs`` and ``exclude``)."""
    skip = {"self", *exclude}
    params = inspect.signature(cls.__init__).parameters.values()
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return {p.name: p for p in params if p.name not in skip and p.kind in kinds}


def accepts_var_kwargs(fn: Callable[..., Any]) -> bool:
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in inspect.signature(fn).parameters.values())


def check_options(what: str, name: str, cls: type, options: dict[str, Any], exclude: Iterable[str] = ()) -> None:
    """Raise a one-line error if ``options`` has a key that ``cls.__init__`` does not take."""
    if accepts_var_kwargs(cls.__init__):
        return
    valid = init_options(cls, exclude)
    for key in options:
        if key not in valid:
            listing = ", ".join(
                k if p.default is inspect.Parameter.empty else f"{k} (default {p.default!r})" for k, p in valid.items()
            )
            close = difflib.get_close_matches(key, list(valid), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise CommError(f"{what} {name!r} has no option {key!r}.{hint} Valid options: {listing or 'none'}")


def import_object(spec: str) -> Any:
    """``"package.module:Name"`` -> the object; a one-line error otherwise."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise CommError(f"expected 'module:Name', got {spec!r}")
    try:
        obj: Any = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - any import failure becomes a one-line error
        raise CommError(f"cannot import module {module_name!r} (from {spec!r}): {one_line(exc)}") from exc
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise CommError(f"module {module_name!r} has no attribute {attr!r} (from {spec!r})")
        obj = getattr(obj, part)
    return obj


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
