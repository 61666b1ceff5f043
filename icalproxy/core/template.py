"""Text templates for what a profile shows: ``{summary}[ — {status}]``.

``{name}`` inserts a value; a ``[...]`` group vanishes when any value inside it is empty,
so ``[ — {status}]`` adds the dash only when there is a status to show. ``\\[`` and
``\\]`` are literal brackets.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from icalproxy.records import record

PLACEHOLDERS = frozenset(
    {
        "summary",
        "status",
        "status_description",
        "status_since",
        "location",
        "address",
        "description",
        "subcalendars",
        "details",
    }
)
_TOKEN = re.compile(r"\\\[|\\\]|\[|\]|\{([a-z_]+)\}|[^\[\]{\\]+|.", re.DOTALL)


class TemplateError(ValueError):
    pass


@record(frozen=True)
class Template:
    # Each part: (literal text, None) or (None, placeholder); groups are nested tuples.
    parts: tuple[object, ...]
    names: frozenset[str]
    flat: list[tuple[int, str, tuple[str, ...]]] | None = None

    def render(self, values: Mapping[str, str]) -> str:
        if self.flat is not None:  # no nested groups: the common, fast case
            out = []
            for kind, text, names in self.flat:
                if kind == 0:
                    out.append(text)
                elif kind == 1:
                    out.append(values.get(text, ""))
                elif all(values.get(name) for name in names):
                    out.append(text.format_map(values))
            return "".join(out).strip()
        text, _ = _render(self.parts, values)
        return text.strip()


def _render(parts: tuple[object, ...], values: Mapping[str, str]) -> tuple[str, bool]:
    out: list[str] = []
    complete = True
    for part in parts:
        if isinstance(part, str):
            out.append(part)
        elif isinstance(part, tuple) and part and part[0] == "{}":
            value = values.get(str(part[1]), "")
            if not value:
                complete = False
            out.append(value)
        elif isinstance(part, tuple):
            text, ok = _render(part[1:], values)
            if ok:
                out.append(text)
    return "".join(out), complete


def _flatten(parts: tuple[object, ...]) -> list[tuple[int, str, tuple[str, ...]]] | None:
    """(0, literal) / (1, placeholder) / (2, format string of a group, its names); None
    when a group nests another group."""
    flat: list[tuple[int, str, tuple[str, ...]]] = []
    for part in parts:
        if isinstance(part, str):
            flat.append((0, part, ()))
            continue
        assert isinstance(part, tuple)
        if part[0] == "{}":
            flat.append((1, str(part[1]), ()))
            continue
        inner = part[1:]
        if any(isinstance(item, tuple) and item[0] != "{}" for item in inner):
            return None
        text = "".join(
            item.replace("{", "{{").replace("}", "}}") if isinstance(item, str) else f"{{{item[1]}}}"
            for item in inner
        )
        names = tuple(str(item[1]) for item in inner if isinstance(item, tuple))
        flat.append((2, text, names))
    return flat


def compile_template(text: str) -> Template:
    """Parse a template; unknown placeholders and unbalanced brackets raise TemplateError."""
    stack: list[list[object]] = [["group"]]
    names: set[str] = set()
    for match in _TOKEN.finditer(text):
        piece = match[0]
        if piece in ("\\[", "\\]"):
            stack[-1].append(piece[1])
        elif piece == "[":
            stack.append(["group"])
        elif piece == "]":
            if len(stack) == 1:
                raise TemplateError("']' without '['")
            group = stack.pop()
            stack[-1].append(tuple(group))
        elif match[1] is not None:
            if match[1] not in PLACEHOLDERS:
                known = ", ".join(sorted(PLACEHOLDERS))
                raise TemplateError(f"unknown placeholder {{{match[1]}}} (known: {known})")
            names.add(match[1])
            stack[-1].append(("{}", match[1]))
        elif piece == "{":
            raise TemplateError("'{' must start a placeholder such as {summary}")
        else:
            stack[-1].append(piece)
    if len(stack) != 1:
        raise TemplateError("'[' without ']'")
    parts = tuple(stack[0][1:])
    return Template(parts, frozenset(names), _flatten(parts))
