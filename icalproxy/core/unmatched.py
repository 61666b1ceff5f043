"""No silent emptying: rule values that appear in no source, with "did you mean" suggestions.

A typo (`Acme Crop`) or a case mismatch (`ACME corp`) in a `subcalendar` rule matches
nothing, and the client's calendar is quietly wiped. This module compares the names a feed's
`where` asks for (sub-calendars, exact or glob; custom field values) with the names that do
appear in the feed's sources, and says which rule values appear nowhere, with the closest
names that do appear and whether they differ only in case or spacing.

Two renderings: ``note()`` for /readyz, logs and metrics, which quotes only what ops wrote in
the rules (never a value from an event), and ``warning()`` for the ops' terminal (`check
--sources`, `render`, `preview`), which also names the suggestions found in the sources.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Literal

from icalproxy.config.model import AllOf, AnyOf, Condition, CustomFields, FieldMatch, Not, Subcalendar
from icalproxy.core.facts import EventFacts
from icalproxy.core.parse import Component, ParsedSource
from icalproxy.core.report import FeedReport
from icalproxy.records import record

Kind = Literal["subcalendar", "glob", "field"]
FactsOf = Callable[[Component, str], EventFacts]


@record(frozen=True)
class Unmatched:
    """One rule value that appears in none of the feed's sources."""

    kind: Kind
    rule: str  # the value as written in the rules: ops' text, not event data
    field: str = ""  # for kind "field": the custom field's name
    negated: bool = False  # inside `not`: it then excludes nothing rather than matching nothing
    difference: str = ""  # "case", "spacing", "case and spacing": how the closest name differs
    suggestions: tuple[str, ...] = ()  # names that do appear (event data: terminal only)

    def _what(self) -> str:
        if self.kind == "field":
            return f"field {self.field} value {self.rule!r}"
        return f"{'subcalendar glob' if self.kind == 'glob' else 'subcalendar'} {self.rule!r}"

    def _effect(self) -> str:
        return "so `not` excludes nothing" if self.negated else "so it matches nothing"

    def note(self) -> str:
        """For /readyz and logs: counts and kinds, never a name taken from the sources."""
        hint = ""
        if self.difference:
            hint = f"; a name differing only in {self.difference} appears"
        elif self.suggestions:
            hint = f"; {len(self.suggestions)} similar name(s) appear"
        what = f"rule {self._what()} appears in no source, {self._effect()}"
        return f"{what}{hint} (see `icalproxy check --sources`)"

    def warning(self) -> str:
        """For the ops' terminal: with the suggestions."""
        text = f"rule {self._what()} appears in no source, {self._effect()}"
        if self.suggestions:
            names = " or ".join(repr(name) for name in self.suggestions)
            text += f"; did you mean {names}?"
            if self.difference:
                text += f" (differs only in {self.difference}: {self._exactness()})"
        return text

    def _exactness(self) -> str:
        if self.kind == "field":
            return "field values are compared ignoring case, not spacing"
        return "sub-calendar names must match exactly"


class NameIndex:
    """The names that appear in the sources, gathered lazily: CATEGORIES values, and the values
    of each custom field asked for. ``facts`` lets the pipeline share its per-run cache."""

    def __init__(
        self, sources: Mapping[str, ParsedSource], custom: CustomFields, facts: FactsOf | None = None
    ) -> None:
        self.sources = sources
        self.custom = custom
        self._facts = facts or (lambda component, source: EventFacts(component, source, custom))
        self._categories: dict[str, frozenset[str]] = {}
        self._fields: dict[tuple[str, str], frozenset[str]] = {}

    def _components(self, source: str) -> Iterator[Component]:
        parsed = self.sources.get(source)
        for series in parsed.series.values() if parsed is not None else ():
            yield from series.components()

    def subcalendars(self, sources: Sequence[str]) -> frozenset[str]:
        found: set[str] = set()
        for source in sources:
            names = self._categories.get(source)
            if names is None:
                collected: set[str] = set()
                parsed = self.sources.get(source)
                for series in parsed.series.values() if parsed is not None else ():
                    if series.overrides:
                        for component in series.components():
                            collected.update(component.categories)
                    elif series.master is not None:
                        collected.update(series.master.categories)
                names = self._categories[source] = frozenset(collected)
            found |= names
        return frozenset(found)

    def field_values(self, sources: Sequence[str], field: str) -> frozenset[str]:
        found: set[str] = set()
        for source in sources:
            key = (source, field.casefold())
            values = self._fields.get(key)
            if values is None:
                values = self._fields[key] = frozenset(
                    value
                    for component in self._components(source)
                    if (value := self._facts(component, source).field(field)) is not None
                )
            found |= values
        return frozenset(found)


def unmatched_rules(where: Condition | None, sources: Sequence[str], index: NameIndex) -> list[Unmatched]:
    """Every rule value of ``where`` that appears in none of ``sources`` (in rule order)."""
    found: list[Unmatched] = []
    if not any(source in index.sources for source in sources):
        return found  # no data yet: nothing can be said
    # What is absent now is often fine: no job is "Cancelled" today, so `not` excluding nothing,
    # or one status of an `in` list being unused, is reported only when it looks like a typo
    # (a similar name appears). A sub-calendar a feed needs that appears nowhere always counts.
    for condition, negated in _leaves(where, negated=False):
        if isinstance(condition, Subcalendar):
            names = index.subcalendars(sources)
            for rule in sorted(condition.exact):
                if rule not in names:
                    item = _with_suggestions("subcalendar", rule, names, negated, exact=True)
                    if not negated or item.suggestions:
                        found.append(item)
            if not negated:
                found.extend(
                    Unmatched("glob", _glob_text(glob.pattern))
                    for glob in condition.globs
                    if not any(glob.fullmatch(name) for name in names)
                )
        elif isinstance(condition, FieldMatch):
            wanted = [condition.equals] if condition.equals is not None else sorted(condition.one_of or ())
            values = index.field_values(sources, condition.name) if wanted else frozenset()
            folded = {value.casefold() for value in values}
            none_appear = not folded.intersection(rule.casefold() for rule in wanted)
            for rule in wanted:
                if rule.casefold() in folded:
                    continue
                item = _with_suggestions("field", rule, values, negated, exact=False)
                if item.suggestions or (none_appear and not negated):
                    found.append(
                        Unmatched("field", rule, condition.name, negated, item.difference, item.suggestions)
                    )
    return found


def report_unmatched(report: FeedReport, found: Sequence[Unmatched]) -> None:
    """Adds the feed's unmatched rules to its report: value-free notes (/readyz, logs, the
    metric counts them), each with its terminal form; and a note when nothing matched at all."""
    for item in found:
        note = item.note()
        report.notes.append(note)
        report.details[note] = item.warning()
    if report.events_out == 0 and report.events_in > 0:
        report.notes.append(f"its rules match none of the {report.events_in} series in its sources")
    report.unmatched = len(found) + (report.events_out == 0 and report.events_in > 0)


def _leaves(condition: Condition | None, *, negated: bool) -> Iterator[tuple[Condition, bool]]:
    match condition:
        case None:
            return
        case AllOf(items=items) | AnyOf(items=items):
            for item in items:
                yield from _leaves(item, negated=negated)
        case Not(item=item):
            yield from _leaves(item, negated=not negated)
        case _:
            yield condition, negated


def _squeeze(text: str) -> str:
    return " ".join(text.split())


def _with_suggestions(
    kind: Kind, rule: str, names: frozenset[str], negated: bool, *, exact: bool
) -> Unmatched:
    """Closest names: same but for case and spacing first, then near spellings."""
    same: list[tuple[str, str]] = []
    for name in sorted(names):
        case = name.casefold() == rule.casefold()
        spacing = _squeeze(name) == _squeeze(rule)
        both = _squeeze(name).casefold() == _squeeze(rule).casefold()
        if spacing and exact:
            same.append(("spacing", name))
        elif case and exact:
            same.append(("case", name))
        elif both:
            same.append(("case and spacing" if exact else "spacing", name))
    if same:
        return Unmatched(kind, rule, negated=negated, difference=same[0][0], suggestions=(same[0][1],))
    by_folded: dict[str, str] = {}
    for name in sorted(names):
        by_folded.setdefault(_squeeze(name).casefold(), name)
    import difflib  # noqa: PLC0415  (only when a rule matches nothing: start-up time)

    close = difflib.get_close_matches(_squeeze(rule).casefold(), list(by_folded), n=3, cutoff=0.75)
    return Unmatched(kind, rule, negated=negated, suggestions=tuple(by_folded[name] for name in close))


def _glob_text(pattern: str) -> str:
    """fnmatch.translate's regex back to a readable glob (best effort, for messages only)."""
    text = pattern.removeprefix("(?s:").removesuffix(")\\Z")
    return text.replace(".*", "*").replace("\\", "")
