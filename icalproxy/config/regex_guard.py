"""A check-time guard against rule regexes whose matching time explodes.

Python's ``re`` backtracks, and has no time limit. Three shapes make it explode on a string
that almost matches, and each is rejected here with a reason:

* a repeated group that itself holds a repetition, ``(\\w+\\s?)+``: exponential;
* a repeated alternation whose branches can start alike, ``(a|ab)+``: exponential;
* three or more unbounded wildcards in one sequence, ``.*a.*b.*c``: a high polynomial
  (``search`` adds one more), minutes on a 2,000-character summary.

Possessive quantifiers (``a++``) and atomic groups (``(?>…)``) never backtrack into
themselves, so what they hold is not counted. The check reads Python's own parse of the
pattern, so it sees exactly what ``re`` will run.
"""

from __future__ import annotations

import importlib
from typing import Any

# Python's own regex parser (private, untyped; ``re._parser`` since 3.11, which the project needs).
sre: Any = importlib.import_module("re._constants")
sre_parse: Any = importlib.import_module("re._parser")

_REPEATS = (sre.MAX_REPEAT, sre.MIN_REPEAT)
_LARGE = 16  # a repetition allowed this often or more counts as unbounded
_MAX_WILDCARDS = 2

Node = tuple[Any, Any]


class _Broad:
    """May start with any character (or too many to list)."""


_BROAD = _Broad()


def backtracking_risk(pattern: str) -> str | None:
    """Why ``pattern`` may take exponential or high-polynomial time, or None when it is safe.
    ``pattern`` must already compile."""
    return _sequence(list(sre_parse.parse(pattern)))


def _sequence(nodes: list[Node]) -> str | None:
    wildcards = 0
    for op, av in nodes:
        if op in _REPEATS:
            _, high, body = av
            wildcards += high >= _LARGE and _is_wildcard(list(body))
            reason = _repeat(high, list(body))
            if reason:
                return reason
        else:
            for child in _children(op, av):
                reason = _sequence(child)
                if reason:
                    return reason
    if wildcards > _MAX_WILDCARDS:
        return (
            f"has {wildcards} unbounded wildcards such as .* in a row (slow on long text); "
            "drop a leading .* (the match is unanchored) or make the parts more specific"
        )
    return None


def _repeat(high: int, body: list[Node]) -> str | None:
    if high > 1:
        inner = _inner_repeat(body)
        if inner is not None and (high >= _LARGE or inner >= _LARGE):
            return (
                "nests quantifiers (catastrophic backtracking); rewrite it without a repeated "
                "group that itself repeats, or make the inner one possessive (++, *+) or atomic (?>…)"
            )
        if high >= _LARGE and _overlapping_branches(body):
            return (
                "repeats an alternation whose branches can match alike (catastrophic "
                "backtracking); make the branches start differently or the group atomic (?>…)"
            )
    return _sequence(body)


def _children(op: Any, av: Any) -> list[list[Node]]:
    """The sub-sequences a node holds (atomic groups and possessive repeats are left out)."""
    if op is sre.SUBPATTERN:
        return [list(av[3])]
    if op is sre.BRANCH:
        return [list(branch) for branch in av[1]]
    if op in (sre.ASSERT, sre.ASSERT_NOT):
        return [list(av[1])]
    if op is sre.GROUPREF_EXISTS:
        return [list(part) for part in av[1:] if part is not None]
    return []


def _inner_repeat(nodes: list[Node]) -> int | None:
    """The largest upper bound of a backtracking repetition inside ``nodes`` (>1), if any."""
    found: int | None = None
    for op, av in nodes:
        if op in _REPEATS and av[1] > 1:
            found = max(found or 0, av[1])
        for child in _children(op, av) + ([list(av[2])] if op in _REPEATS else []):
            inner = _inner_repeat(child)
            if inner is not None:
                found = max(found or 0, inner)
    return found


def _is_wildcard(body: list[Node]) -> bool:
    return len(body) == 1 and _first(body) is _BROAD


def _overlapping_branches(nodes: list[Node]) -> bool:
    """Whether an alternation in ``nodes`` has two branches that may begin with the same
    character (or one that may be empty)."""
    for op, av in nodes:
        if op is sre.BRANCH:
            seen: set[int] = set()
            for branch in av[1]:
                first = _first(list(branch))
                if first is None or isinstance(first, _Broad) or not seen.isdisjoint(first):
                    return True
                seen |= first
        elif op is sre.SUBPATTERN and _overlapping_branches(list(av[3])):
            return True
    return False


def _first(nodes: list[Node]) -> set[int] | _Broad | None:
    """The characters ``nodes`` can start with: a set of code points (both cases), _BROAD
    when too many or unknown, None when the sequence can match the empty string."""
    for index, (op, av) in enumerate(nodes):
        if op is sre.AT:
            continue
        if op is sre.LITERAL:
            return _cases(av)
        if op is sre.IN:
            chars: set[int] = set()
            for kind, value in av:
                if kind is sre.LITERAL:
                    chars |= _cases(value)
                elif kind is sre.RANGE and value[1] - value[0] < 256:
                    for code in range(value[0], value[1] + 1):
                        chars |= _cases(code)
                else:  # a category, a negation or a wide range
                    return _BROAD
            return chars
        if op is sre.SUBPATTERN:
            return _first(list(av[3]) + nodes[index + 1 :])
        return _BROAD  # repeats (may be empty or long), ANY, NOT_LITERAL, branches, groups
    return None


def _cases(code: int) -> set[int]:
    char = chr(code)
    return {code, ord(char.lower()[0]), ord(char.upper()[0])}
