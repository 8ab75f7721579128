"""Integer constants of a C header, read from the header itself so Python never retypes them.

Handles what the firmware's contract headers use: object-like `#define NAME value` whose value is
an integer expression (decimal or hex literals with `u`/`U`/`l`/`L` suffixes, + - * / % << >> | & ~,
parentheses, earlier macros) and one-argument-list function-like macros used inside such
expressions (`#define NK_COBS_MAX_ENCODED(n) ((n) + (n) / 254u + 1u)`). Division and remainder are C's
(truncating toward zero). Defines whose value is not such an
expression (include guards, types, strings) are left out.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Mapping
from pathlib import Path

from .errors import NanokwsError

_COMMENT = re.compile(r"/\*.*?\*/|//[^\n]*", re.DOTALL)
_DEFINE = re.compile(r"^[ \t]*#[ \t]*define[ \t]+(\w+)(\(([\w\s,]*)\))?[ \t]*(.*)$", re.MULTILINE)
_INT = re.compile(r"\b(0[xX][0-9a-fA-F]+|\d+)[uUlL]*\b")



def _c_div(a: int, b: int) -> int:
    """C's integer division: truncates toward zero."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def _c_int(literal: str) -> int:
    """A C integer literal without its suffix: hex, octal (leading 0) or decimal."""
    if literal[:2] in ("0x", "0X"):
        return int(literal, 16)
    return int(literal, 8) if len(literal) > 1 and literal[0] == "0" else int(literal)


_BINOPS: dict[type[ast.operator], Callable[[int, int], int]] = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.FloorDiv: _c_div,
    ast.Mod: lambda a, b: a - _c_div(a, b) * b,
    ast.LShift: lambda a, b: a << b,
    ast.RShift: lambda a, b: a >> b,
    ast.BitOr: lambda a, b: a | b,
    ast.BitAnd: lambda a, b: a & b,
    ast.BitXor: lambda a, b: a ^ b,
}


class _Macro:
    def __init__(self, params: list[str], body: str) -> None:
        self.params, self.body = params, body


def _evaluate(expr: str, values: Mapping[str, int], macros: Mapping[str, _Macro]) -> int:
    """Value of a C integer expression; ValueError when it is not one."""
    py = _INT.sub(lambda m: str(_c_int(m.group(1))), expr.strip()).replace("/", "//")
    try:
        tree = ast.parse(py, mode="eval")
    except SyntaxError as exc:
        raise ValueError(f"not an integer expression: {expr!r}") from exc

    def ev(node: ast.AST) -> int:
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and type(node.value) is int:
            return node.value
        if isinstance(node, ast.Name) and node.id in values:
            return values[node.id]
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            return _BINOPS[type(node.op)](ev(node.left), ev(node.right))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd, ast.Invert)):
            v = ev(node.operand)
            return -v if isinstance(node.op, ast.USub) else ~v if isinstance(node.op, ast.Invert) else v
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in macros
            and not node.keywords
            and len(node.args) == len(macros[node.func.id].params)
        ):
            macro = macros[node.func.id]
            args = {p: ev(a) for p, a in zip(macro.params, node.args, strict=True)}
            return _evaluate(macro.body, {**values, **args}, macros)
        raise ValueError(f"not an integer expression: {expr!r}")

    return ev(tree)


def parse_int_defines(text: str) -> dict[str, int]:
    """Every `#define` of `text` whose value is an integer expression, in header order."""
    values: dict[str, int] = {}
    macros: dict[str, _Macro] = {}
    for name, has_params, params, body in _DEFINE.findall(_COMMENT.sub(" ", text)):
        if has_params:
            macros[name] = _Macro([p.strip() for p in params.split(",") if p.strip()], body)
            continue
        if not body.strip():
            continue
        try:
            values[name] = _evaluate(body, values, macros)
        except (ValueError, ZeroDivisionError):
            continue
    return values


def read_int_defines(path: Path, what: str) -> dict[str, int]:
    """`parse_int_defines` of the header at `path`; NanokwsError naming it when it cannot be read."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise NanokwsError(f"{path}: cannot read the {what} header ({exc.strerror})") from exc
    return parse_int_defines(text)


class HeaderConstants(dict[str, int]):
    """{suffix: value} of one family of a header's constants; a missing one is a NanokwsError
    naming the header and the full C name, not a bare KeyError."""

    def __init__(self, values: Mapping[str, int], prefix: str, path: Path) -> None:
        super().__init__(values)
        self.prefix, self.path = prefix, path

    def __missing__(self, key: str) -> int:
        raise NanokwsError(f"{self.path}: {self.prefix}{key} is not defined as an integer constant")


def pick(defines: Mapping[str, int], prefix: str, path: Path) -> HeaderConstants:
    """The defines named `prefix` + X, as {X: value}; NanokwsError when there is none."""
    found = {name[len(prefix) :]: v for name, v in defines.items() if name.startswith(prefix)}
    if not found:
        raise NanokwsError(f"{path}: no {prefix}* constants")
    return HeaderConstants(found, prefix, path)


def need(defines: Mapping[str, int], name: str, path: Path) -> int:
    """defines[name]; NanokwsError naming the header when it does not define it."""
    try:
        return defines[name]
    except KeyError:
        raise NanokwsError(f"{path}: {name} is not defined as an integer constant") from None
