"""Substitutions of the ROS 2 launch frontend: ``$(name arg ...)`` inside attribute values.

Grammar (a compatible subset of the one ``ros2 launch`` uses):

* Outside a substitution, text is literal, except that ``$(`` opens a substitution and a
  backslash escapes the next character (``\\$(`` gives a literal ``$(``).
* ``$(NAME ARG ARG ...)``: ``NAME`` is letters, digits, ``_`` and ``-``; arguments are
  separated by spaces.  An argument is a concatenation of unquoted characters, nested
  substitutions and single- or double-quoted strings (which may contain spaces,
  parentheses and nested substitutions).  A backslash escapes the next character.

Parsing (:func:`parse_template`) happens when a launch file is read, so syntax errors and
unknown substitution names are reported with the file and line.  Evaluation
(:func:`evaluate`) happens while the launch description is resolved, against a
:class:`SubstitutionContext`.
"""
from __future__ import annotations

import ast
import math
import operator
import shutil
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Callable, Mapping, Protocol

from sitebot.errors import LaunchError

__all__ = [
    "Subst",
    "Template",
    "SubstitutionContext",
    "SUBSTITUTIONS",
    "parse_template",
    "evaluate",
    "evaluate_condition",
    "condition_value",
    "safe_eval",
]


@dataclass(frozen=True)
class Subst:
    """One ``$(name args...)``; every argument is itself a :class:`Template`."""

    name: str
    args: tuple["Template", ...]


@dataclass(frozen=True)
class Template:
    """A parsed attribute value: literal text and substitutions, plus where it came from."""

    parts: tuple["str | Subst", ...]
    file: str | None = None
    line: int | None = None

    @property
    def is_plain(self) -> bool:
        """True when the value holds no substitution."""
        return all(isinstance(p, str) for p in self.parts)

    @property
    def plain_text(self) -> str:
        """The literal text of a plain template (substitutions rendered as ``$(...)``)."""
        return "".join(p if isinstance(p, str) else f"$({p.name} ...)" for p in self.parts)

    def __str__(self) -> str:
        return _render(self)


def _render(t: Template) -> str:
    out = []
    for p in t.parts:
        if isinstance(p, str):
            out.append(p.replace("\\", "\\\\").replace("$(", "\\$("))
        else:
            args = "".join(" " + repr(_render(a)) for a in p.args)
            out.append(f"$({p.name}{args})")
    return "".join(out)


# name -> (min args, max args)
SUBSTITUTIONS: Mapping[str, tuple[int, int]] = MappingProxyType({
    "var": (1, 2),
    "env": (1, 2),
    "optenv": (1, 2),
    "find-pkg-share": (1, 1),
    "find-pkg-prefix": (1, 1),
    "find-exec": (1, 1),
    # parsed so that files for `ros2 launch` (robot_description from xacro) load; evaluating
    # it is refused: sitebot launch does not run shell commands
    "command": (1, 2),
    "dirname": (0, 0),
    "filename": (0, 0),
    "eval": (1, 1),
    "not": (1, 1),
    "and": (2, 2),
    "or": (2, 2),
    "equals": (2, 2),
})


# --------------------------------------------------------------------------- parsing


class _Scanner:
    def __init__(self, text: str, file: str | None, line: int | None) -> None:
        self.s = text
        self.i = 0
        self.file = file
        self.line = line

    def error(self, msg: str) -> LaunchError:
        return LaunchError(f"{msg} in {self.s!r}", self.file, self.line)

    def template(self, parts: list) -> Template:
        merged: list = []
        for p in parts:
            if isinstance(p, str) and merged and isinstance(merged[-1], str):
                merged[-1] += p
            elif not (isinstance(p, str) and p == ""):
                merged.append(p)
        return Template(tuple(merged), self.file, self.line)

    def _take(self, buf: list[str], parts: list) -> list[str]:
        """Consume one unit of text at the cursor: an escaped character, a ``$(...)``
        substitution (closing the literal in ``buf`` into ``parts``) or a literal character.
        Returns the literal buffer to go on with."""
        s = self.s
        if s[self.i] == "\\" and self.i + 1 < len(s):
            buf.append(s[self.i + 1])
            self.i += 2
        elif s.startswith("$(", self.i):
            parts.append("".join(buf))
            buf = []
            parts.append(self.parse_subst())
        else:
            buf.append(s[self.i])
            self.i += 1
        return buf

    def parse_top(self) -> Template:
        s = self.s
        parts: list = []
        buf: list[str] = []
        while self.i < len(s):
            buf = self._take(buf, parts)
        parts.append("".join(buf))
        return self.template(parts)

    def parse_subst(self) -> Subst:
        s = self.s
        start = self.i
        self.i += 2
        j = self.i
        while j < len(s) and (s[j].isalnum() or s[j] in "_-"):
            j += 1
        name = s[self.i:j]
        if not name or not name[0].isalpha():
            raise self.error(f"expected a substitution name after '$(' at column {start + 1}")
        self.i = j
        if name not in SUBSTITUTIONS:
            raise self.error(
                f"unknown substitution '$({name})' (supported: "
                + ", ".join(sorted(SUBSTITUTIONS)) + ")")
        args: list[Template] = []
        while True:
            if self.i >= len(s):
                raise self.error(f"unterminated substitution '$({name}'")
            c = s[self.i]
            if c == ")":
                self.i += 1
                break
            if c in " \t":
                while self.i < len(s) and s[self.i] in " \t":
                    self.i += 1
                continue
            if s[self.i - 1] not in " \t":
                raise self.error(f"expected a space or ')' after '$({name}'")
            args.append(self.parse_arg())
        lo, hi = SUBSTITUTIONS[name]
        if not lo <= len(args) <= hi:
            want = str(lo) if lo == hi else f"{lo} to {hi}"
            raise self.error(
                f"substitution '$({name})' takes {want} argument(s), got {len(args)}")
        return Subst(name, tuple(args))

    def parse_arg(self) -> Template:
        s = self.s
        parts: list = []
        buf: list[str] = []
        while self.i < len(s):
            c = s[self.i]
            if c in " \t)":
                break
            if c == "\\" and self.i + 1 < len(s):
                buf.append(s[self.i + 1])
                self.i += 2
            elif s.startswith("$(", self.i):
                parts.append("".join(buf))
                buf = []
                parts.append(self.parse_subst())
            elif c in "'\"":
                parts.append("".join(buf))
                buf = []
                parts.extend(self.parse_quoted(c))
            elif c == "(":
                raise self.error("unescaped '(' in a substitution argument (quote the argument)")
            else:
                buf.append(c)
                self.i += 1
        parts.append("".join(buf))
        return self.template(parts)

    def parse_quoted(self, quote: str) -> list:
        s = self.s
        self.i += 1
        parts: list = []
        buf: list[str] = []
        while True:
            if self.i >= len(s):
                raise self.error(f"unterminated {quote} quote")
            c = s[self.i]
            if c == quote:
                self.i += 1
                break
            buf = self._take(buf, parts)
        parts.append("".join(buf))
        return parts


def parse_template(text: str, file: str | Path | None = None,
                   line: int | None = None) -> Template:
    """Parse an attribute value into a :class:`Template`.

    :raises LaunchError: on a syntax error, an unknown substitution or a wrong number of
        arguments, naming ``file`` and ``line``.
    """
    return _Scanner(text, str(file) if file is not None else None, line).parse_top()


# ------------------------------------------------------------------------- evaluation


class SubstitutionContext(Protocol):
    """What :func:`evaluate` needs from the launch being resolved."""

    def launch_configuration(self, name: str) -> str | None:
        """The value of launch configuration ``name`` (``arg``/``let``), or None."""

    @property
    def environ(self) -> Mapping[str, str]:
        """The environment as the launch file sees it (after ``set_env``)."""

    @property
    def current_file(self) -> Path:
        """The absolute path of the launch file being read."""

    def find_package_share(self, package: str) -> Path:
        """``<prefix>/share/<package>``; raises LookupError when unknown."""

    def find_package_prefix(self, package: str) -> Path:
        """The install prefix of ``package``; raises LookupError when unknown."""


def condition_value(text: str) -> bool | None:
    """``true``/``1`` -> True, ``false``/``0`` -> False (any case), anything else -> None."""
    low = text.strip().lower()
    if low in ("true", "1"):
        return True
    if low in ("false", "0"):
        return False
    return None


def evaluate_condition(template: Template, ctx: SubstitutionContext, what: str = "if") -> bool:
    """Evaluate an ``if``/``unless`` value; only true/false/1/0 (any case) are accepted."""
    text = evaluate(template, ctx)
    value = condition_value(text)
    if value is None:
        raise LaunchError(
            f"'{what}' must evaluate to true, false, 1 or 0, got {text!r}",
            template.file, template.line)
    return value


def evaluate(template: Template, ctx: SubstitutionContext) -> str:
    """Evaluate a template to a string.

    :raises LaunchError: naming the template's file and line when a substitution fails.
    """
    out = []
    for part in template.parts:
        if isinstance(part, str):
            out.append(part)
        else:
            out.append(_perform(part, template, ctx))
    return "".join(out)


def _perform(sub: Subst, where: Template, ctx: SubstitutionContext) -> str:
    args = [evaluate(a, ctx) for a in sub.args]

    def fail(msg: str) -> LaunchError:
        return LaunchError(f"$({sub.name}): {msg}", where.file, where.line)

    name = sub.name
    if name == "var":
        value = ctx.launch_configuration(args[0])
        if value is None:
            if len(args) == 2:
                return args[1]
            raise fail(f"launch configuration '{args[0]}' is not set "
                       "(declare it with 'arg' or set it with 'let' before using it)")
        return value
    if name in ("env", "optenv"):
        value = ctx.environ.get(args[0])
        if value is None:
            if len(args) == 2:
                return args[1]
            if name == "optenv":
                return ""
            raise fail(f"environment variable '{args[0]}' is not set "
                       "(give a default: $(env NAME default))")
        return value
    if name == "find-pkg-share":
        try:
            return str(ctx.find_package_share(args[0]))
        except LookupError as e:
            raise fail(str(e.args[0] if e.args else e)) from None
    if name == "find-pkg-prefix":
        try:
            return str(ctx.find_package_prefix(args[0]))
        except LookupError as e:
            raise fail(str(e.args[0] if e.args else e)) from None
    if name == "find-exec":
        found = shutil.which(args[0], path=ctx.environ.get("PATH"))
        if found is None:
            raise fail(f"executable '{args[0]}' not found on PATH")
        return found
    if name == "command":
        raise fail("$(command ...) runs a shell command at launch time; sitebot launch does "
                   "not run shell commands: use `ros2 launch` on a ROS 2 install for this file")
    if name == "dirname":
        return str(ctx.current_file.parent)
    if name == "filename":
        return str(ctx.current_file)
    if name == "eval":
        try:
            return str(safe_eval(args[0]))
        except (ValueError, TypeError, ZeroDivisionError, OverflowError, KeyError,
                IndexError, AttributeError) as e:
            raise fail(f"cannot evaluate {args[0]!r}: {e}") from None
    if name in ("not", "and", "or"):
        values = []
        for a in args:
            v = condition_value(a)
            if v is None:
                raise fail(f"expects true, false, 1 or 0, got {a!r}")
            values.append(v)
        if name == "not":
            result = not values[0]
        elif name == "and":
            result = values[0] and values[1]
        else:
            result = values[0] or values[1]
        return "true" if result else "false"
    if name == "equals":
        return "true" if _loose_equals(args[0], args[1]) else "false"
    raise fail("unsupported substitution")  # pragma: no cover - parse rejects these


def _loose_equals(a: str, b: str) -> bool:
    ba, bb = condition_value(a), condition_value(b)
    if ba is not None and bb is not None and not (_is_number(a) and _is_number(b)):
        return ba == bb
    if _is_number(a) and _is_number(b):
        return float(a) == float(b)
    return a == b


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


# ------------------------------------------------------------------- safe $(eval ...)

_BINOPS: Mapping[type, Callable] = MappingProxyType({
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
    ast.Pow: operator.pow,
})
_UNARY: Mapping[type, Callable] = MappingProxyType({
    ast.USub: operator.neg, ast.UAdd: operator.pos, ast.Not: operator.not_,
})
_CMP: Mapping[type, Callable] = MappingProxyType({
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
    ast.Gt: operator.gt, ast.GtE: operator.ge, ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b, ast.Is: operator.is_, ast.IsNot: operator.is_not,
})
_FUNCS: Mapping[str, Callable] = MappingProxyType({
    "abs": abs, "min": min, "max": max, "round": round, "int": int, "float": float,
    "str": str, "bool": bool, "len": len, "sum": sum,
})
_MAX_SIZE = 1_000_000


def _math_names() -> dict[str, object]:
    return {k: v for k, v in vars(math).items() if not k.startswith("_")}


def safe_eval(expression: str) -> object:
    """Evaluate a Python *expression* restricted to literals, arithmetic, comparisons,
    boolean logic, conditional expressions, ``math`` (also unqualified, as in ROS) and a
    few built-ins (abs, min, max, round, int, float, str, bool, len, sum).

    :raises ValueError: on anything else (names, attributes, imports, lambdas...).
    """
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError as e:
        raise ValueError(f"syntax error: {e.msg}") from None
    names = _math_names()
    names.update({"True": True, "False": False, "None": None})
    return _ev(tree.body, names)


def _ev(node: ast.AST, names: Mapping[str, object]) -> object:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        if node.id in names:
            return names[node.id]
        if node.id == "math":
            return math
        raise ValueError(f"unknown name '{node.id}'")
    if isinstance(node, ast.Attribute):
        if isinstance(node.value, ast.Name) and node.value.id == "math" \
                and not node.attr.startswith("_") and hasattr(math, node.attr):
            return getattr(math, node.attr)
        raise ValueError("only math.<name> attributes are allowed")
    if isinstance(node, (ast.List, ast.Tuple)):
        items = [_ev(e, names) for e in node.elts]
        return items if isinstance(node, ast.List) else tuple(items)
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        left, right = _ev(node.left, names), _ev(node.right, names)
        if isinstance(node.op, ast.Pow) and isinstance(right, (int, float)) and abs(right) > 1000:
            raise ValueError("exponent too large")
        if isinstance(node.op, ast.Mult):
            for seq, n in ((left, right), (right, left)):
                if isinstance(seq, (str, list, tuple)) and isinstance(n, int) \
                        and len(seq) * n > _MAX_SIZE:
                    raise ValueError("result too large")
        return _BINOPS[type(node.op)](left, right)
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_ev(node.operand, names))
    if isinstance(node, ast.BoolOp):
        if isinstance(node.op, ast.And):
            result: object = True
            for v in node.values:
                result = _ev(v, names)
                if not result:
                    return result
            return result
        result = False
        for v in node.values:
            result = _ev(v, names)
            if result:
                return result
        return result
    if isinstance(node, ast.Compare):
        left = _ev(node.left, names)
        for op, comp in zip(node.ops, node.comparators):
            right = _ev(comp, names)
            if type(op) not in _CMP:
                raise ValueError("unsupported comparison")
            if not _CMP[type(op)](left, right):
                return False
            left = right
        return True
    if isinstance(node, ast.IfExp):
        return _ev(node.body, names) if _ev(node.test, names) else _ev(node.orelse, names)
    if isinstance(node, ast.Subscript):
        target = _ev(node.value, names)
        if isinstance(node.slice, ast.Slice):
            parts = [None if p is None else _ev(p, names)
                     for p in (node.slice.lower, node.slice.upper, node.slice.step)]
            return target[slice(*parts)]  # type: ignore[index]
        return target[_ev(node.slice, names)]  # type: ignore[index]
    if isinstance(node, ast.Call):
        if node.keywords:
            raise ValueError("keyword arguments are not allowed")
        func = node.func
        if isinstance(func, ast.Name) and func.id in _FUNCS:
            fn = _FUNCS[func.id]
        else:
            fn = _ev(func, names)
            if not callable(fn) or not any(fn is v for v in vars(math).values()):
                raise ValueError("only math functions and simple built-ins may be called")
        return fn(*[_ev(a, names) for a in node.args])
    raise ValueError(f"'{type(node).__name__}' is not allowed in $(eval)")
