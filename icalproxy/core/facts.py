"""What rules ask of one VEVENT: sub-calendars, custom fields, summary, time span.

Computed lazily and at most once per component per run, so a feed that only looks at
CATEGORIES never decodes a date or unescapes a DESCRIPTION.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from icalproxy.config.model import CustomFields
from icalproxy.core import values
from icalproxy.core.lines import ContentLine, unescape_text
from icalproxy.core.parse import Component


def field_property(custom: CustomFields, name: str) -> str:
    """The property that holds custom field ``name``: ``Status`` → ``X-TEAMUP-STATUS``."""
    return custom.prefix + name.upper().replace(" ", "-")


def description_field(text: str, name: str) -> str | None:
    """The value of the first ``Name: value`` line of a DESCRIPTION text (name in any case);
    ``Status: Done`` → ``Done``."""
    if ":" not in text:
        return None
    wanted = name.casefold()
    for line in text.split("\n"):
        key, colon, value = line.partition(":")
        if colon:
            key = key.strip(" \t")
            if len(key) <= 60 and key.casefold() == wanted:
                return value.strip(" \t")
    return None


_WHO_SPLIT = re.compile(r"\s*[,;&/]\s*")


def who_names(value: str | None) -> frozenset[str]:
    """The people of a ``Who`` value, casefolded: ``Jo, Anna`` → {jo, anna}."""
    if not value:
        return frozenset()
    return frozenset(name.casefold() for name in _WHO_SPLIT.split(value.strip()) if name)


class EventFacts:
    __slots__ = (
        "_fields",
        "_span",
        "component",
        "custom",
        "recurrence",
        "source",
    )

    def __init__(
        self,
        component: Component,
        source: str,
        custom: CustomFields,
        recurrence: values.RecurrenceBudget | None = None,
    ) -> None:
        self.component = component
        self.source = source
        self.custom = custom
        self.recurrence = recurrence if recurrence is not None else values.RecurrenceBudget()
        self._fields: dict[str, str | None] | None = None
        self._span: tuple[datetime, datetime | None] | None = None

    def first(self, name: str) -> ContentLine | None:
        return self.component.first(name)

    @property
    def categories(self) -> tuple[str, ...]:
        return self.component.categories

    def text(self, name: str) -> str:
        prop = self.first(name)
        return unescape_text(prop.value) if prop is not None else ""

    @property
    def summary(self) -> str:
        return self.text("SUMMARY")

    @property
    def who(self) -> frozenset[str]:
        """The people an event is assigned to (Teamup's *Who*), casefolded."""
        return who_names(self.field("Who"))

    def field(self, name: str) -> str | None:
        """A custom field's value: ``<prefix><NAME>`` property first, then a DESCRIPTION line.
        Read once per name: every feed's rules may ask for it."""
        fields = self._fields
        if fields is None:
            fields = self._fields = {}
        elif name in fields:
            return fields[name]
        value = fields[name] = self._read_field(name)
        return value

    def _read_field(self, name: str) -> str | None:
        prop = self.first(field_property(self.custom, name))
        if prop is not None:
            return unescape_text(prop.value).strip()
        if not self.custom.description_lines or not self.component.mentions(name):
            return None
        return description_field(self.text("DESCRIPTION"), name)

    def span(self, horizon: datetime) -> tuple[datetime, datetime | None]:
        """(first start, last end or None when unbounded). COUNT rules are expanded only until
        an occurrence after ``horizon``: that end is then a lower bound, past the horizon."""
        if self._span is None:
            self._span = self._compute_span(horizon)
        return self._span

    def _compute_span(self, horizon: datetime) -> tuple[datetime, datetime | None]:
        component = self.component
        start_prop = self.first("DTSTART")
        start = values.parse_when(start_prop.value) if start_prop else None
        if start is None:
            return datetime.min, None
        length = timedelta(days=1) if values.is_date(start_prop.value if start_prop else "") else timedelta()
        end_prop = component.first("DTEND")
        if end_prop is not None:
            end = values.parse_when(end_prop.value)
            if end is not None and end > start:
                length = end - start
        else:
            duration_prop = component.first("DURATION")
            duration = values.parse_duration(duration_prop.value) if duration_prop else None
            if duration is not None and duration > timedelta():
                length = duration
        last_start: datetime | None = start
        rrule = component.first("RRULE")
        if rrule is not None:
            try:
                last_start = values.rrule_end(rrule.value, start, horizon, self.recurrence)
            except values.RecurrenceTooCostly:
                self.recurrence.cut.append((self.source, component.line))
                return start, None
        for rdate in component.all("RDATE"):
            for item in rdate.value.split(","):
                moment = values.parse_when(item.partition("/")[0])
                if moment is not None and last_start is not None and moment > last_start:
                    last_start = moment
        return start, (last_start + length if last_start is not None else None)
