"""Typed values from YAML: ranges carried by type hints, and the coercion that checks them.

`pipeline.config` builds params.yaml's dataclasses with `build`; the library's constructors (models, tasks,
update rules, forward models) declare their keyword arguments with the same hints and `check_kwargs` judges
params.yaml's values against them; a `Component` is a registry name with such arguments, `registry_names` reads a
registry's names without importing it, and `flatten` turns a config into MLflow's `a.b.c` params. No torch, none
of the library: every stage imports this.
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import inspect
import math
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pipeline.errors import AeganError


class ConfigError(AeganError):
    """params.yaml is missing, malformed, or holds an unknown key or a bad value."""

    def __init__(self, message: str) -> None:
        # a key from params.yaml may hold a line break or another control character: shown escaped, on one line
        super().__init__("".join(char if char.isprintable() else repr(char)[1:-1] for char in message))


@dataclass(frozen=True)
class Bounds:
    """A number's allowed range, carried by its type hint (`Annotated[int, Bounds(1)]`). params.yaml's fields and
    the library's keyword arguments (models, tasks, update rules, forward models) declare theirs this way, and
    `coerce` checks every value against it, so a width of 0 or a seed of -1 is one line naming the key."""

    low: float | None = None
    high: float | None = None
    open_low: bool = False  # `low` itself is out of range
    open_high: bool = False

    def check(self, value: float, where: str) -> None:
        if self.low is not None and (value < self.low or (self.open_low and value == self.low)):
            raise ConfigError(f"{where}: must be {'above' if self.open_low else 'at least'} {self.low:g}, got {value}")
        if self.high is not None and (value > self.high or (self.open_high and value == self.high)):
            raise ConfigError(f"{where}: must be {'below' if self.open_high else 'at most'} {self.high:g}, got {value}")


Size = Annotated[int, Bounds(1)]  # a count: units, layers, epochs, images, steps
Index = Annotated[int, Bounds(0)]  # a position or a label
Seed = Annotated[int, Bounds(0, 2**32 - 1)]  # what numpy's and torch's generators accept
Positive = Annotated[float, Bounds(0, open_low=True)]  # learning rates, radii
NonNegative = Annotated[float, Bounds(0)]  # loss weights, penalties, noise levels (0 turns the term off)
Fraction = Annotated[float, Bounds(0, 1)]  # probabilities, labels of a smoothed target, Adam's betas
Decay = Annotated[float, Bounds(0, 1, open_high=True)]  # a moving average's decay: 1 would never move


@typing.runtime_checkable
class ReadsItself(typing.Protocol):
    """A config class that builds itself from its mapping (`Component`: a registry name plus any keys)."""

    @classmethod
    def from_raw(cls, raw: Mapping[str, Any], where: str) -> Any: ...


def check_kwargs(
    target: Callable[..., Any], args: Mapping[str, Any], where: str, provided: tuple[str, ...] = ()
) -> Mapping[str, Any]:
    """Check keyword arguments against `target`'s keyword-only parameters and type hints (a constructor of the
    library, handed in by its caller: this module imports none).

    Args:
        target: a class or function whose keyword-only parameters are the valid keys.
        args: the keys and values from params.yaml.
        where: the key path, for messages.
        provided: parameters the pipeline fills in itself (a model's shape comes from its task and dataset).

    Returns:
        The arguments with values converted to their hinted types, read-only.
    """
    signature = inspect.signature(target)
    hints = typing.get_type_hints(target.__init__ if inspect.isclass(target) else target, include_extras=True)
    accepted = {
        name: p
        for name, p in signature.parameters.items()
        if p.kind is inspect.Parameter.KEYWORD_ONLY and name not in provided
    }
    checked = {}
    for key, value in args.items():
        if key in provided:
            raise ConfigError(f"{where}.{key}: set by the dataset and task, remove it here")
        if key not in accepted:
            raise ConfigError(f"{where}.{key}: unknown key; valid keys are {', '.join(sorted(accepted)) or 'none'}")
        checked[key] = coerce(hints[key], value, f"{where}.{key}") if key in hints else value
    missing = [n for n, p in accepted.items() if p.default is inspect.Parameter.empty and n not in args]
    if missing:
        raise ConfigError(f"{where}: missing required key(s) {', '.join(missing)}")
    return types.MappingProxyType(checked)


def build(cls: type, raw: Any, where: str) -> Any:
    """Construct dataclass `cls` from a mapping, field by field, with type checks."""
    label = where or "params.yaml"
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{label}: expected a mapping, got {type(raw).__name__}")
    if issubclass(cls, ReadsItself):
        return cls.from_raw(raw, where)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields), key=str)  # YAML keys may be numbers
    if unknown:
        raise ConfigError(
            f"{where + '.' if where else ''}{unknown[0]}: unknown key; valid keys are {', '.join(fields)}"
        )
    hints = typing.get_type_hints(cls, include_extras=True)
    values = {}
    for name, spec in fields.items():
        path = f"{where}.{name}" if where else name
        if name in raw:
            values[name] = coerce(hints[name], raw[name], path)
        elif spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{path}: missing required key")
    try:
        return cls(**values)
    except (ValueError, TypeError) as error:  # a settings class's own cross-field check (`LatentSearch`)
        raise ConfigError(f"{label}: {error}") from None


def coerce(hint: Any, value: Any, where: str) -> Any:
    """Check `value` against type `hint`; return it in frozen form (tuples, read-only mappings)."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is Any:
        return value
    if origin is Annotated:
        value = coerce(args[0], value, where)
        for bounds in (meta for meta in hint.__metadata__ if isinstance(meta, Bounds)):
            bounds.check(value, where)
        return value
    if dataclasses.is_dataclass(hint):
        return build(hint, value, where)
    if origin is Literal:
        if isinstance(value, bool) or value not in args:  # True == 1 would otherwise pass for Literal[1, 3]
            raise ConfigError(f"{where}: {value!r} is not valid; choose one of {', '.join(map(str, args))}")
        return value
    if origin in (types.UnionType, typing.Union):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return coerce(option, value, where)
            except ConfigError as error:
                errors.append(error)
        raise errors[0]
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        fixed = origin is tuple and args and args[-1] is not Ellipsis  # tuple[float, float]: exactly two
        if fixed and len(value) != len(args):
            raise ConfigError(f"{where}: expected {len(args)} values, got {len(value)}")
        items = args if fixed else [args[0] if args else Any] * len(value)
        return tuple(coerce(item, v, f"{where}[{i}]") for i, (item, v) in enumerate(zip(items, value)))
    if origin in (dict, Mapping) or hint in (dict, Mapping):
        if value is None:
            value = {}
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        item = args[1] if args else Any
        return types.MappingProxyType({str(k): coerce(item, v, f"{where}.{k}") for k, v in value.items()})
    if hint is float:
        if isinstance(value, str):  # YAML reads `1e-3` (no dot) as a string
            with contextlib.suppress(ValueError):
                value = float(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if not math.isfinite(number):  # YAML's .nan and .inf, or an integer past float's range
            raise ConfigError(f"{where}: expected a finite number, got {value!r}")
        return number
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if hint in (str, bool):
        if not isinstance(value, hint):
            raise ConfigError(f"{where}: expected {hint.__name__}, got {value!r}")
        return value
    return value


def registry_names(module: str, registry: str) -> frozenset[str]:
    """The keys of the literal dict `registry` in the library module `module` ("models" is pipeline/models/),
    read from its source without importing it: params.yaml's names are checked with no torch, and a new model
    is one line in its registry and nothing here."""
    path = Path(__file__).parent / module
    path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    for node in ast.parse(path.read_text()).body:
        target = (
            node.target
            if isinstance(node, ast.AnnAssign)
            else (node.targets[0] if isinstance(node, ast.Assign) else None)
        )
        if isinstance(target, ast.Name) and target.id == registry and isinstance(node.value, ast.Dict):
            return frozenset(ast.literal_eval(key) for key in node.value.keys if key is not None)
    raise RuntimeError(f"{path} holds no literal dict {registry}")


@dataclass(frozen=True)
class Component:
    """A registry entry chosen by name plus the keyword arguments its constructor takes."""

    name: str
    args: Mapping[str, Any]

    @classmethod
    def from_raw(cls, raw: Mapping[str, Any], where: str) -> Component:
        """`{name: conv_ae, latent_dim: 8}`: the name, and every other key for the constructor to judge."""
        if not isinstance(raw.get("name"), str):
            raise ConfigError(f"{where}.name: missing; give the registry name of the {where.rsplit('.', 1)[-1]}")
        return cls(name=raw["name"], args=types.MappingProxyType({k: v for k, v in raw.items() if k != "name"}))


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Flatten a config (dataclass or mapping) into `a.b.c -> value`, as MLflow params want."""
    if isinstance(value, Component):
        value = {"name": value.name, **value.args}
    elif dataclasses.is_dataclass(value):
        value = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        flat: dict[str, Any] = {}
        for key, item in value.items():
            flat.update(flatten(item, f"{prefix}{key}."))
        return flat
    return {prefix.rstrip("."): list(value) if isinstance(value, tuple) else value}
