"""Hypothesis mutates real fixtures (truncate, duplicate, reorder, random folds, random bytes,
huge lines, deep nesting, thousands of properties, costly recurrence rules): the pipeline
never raises, never hangs,
never lets a SECRET through the client and busy profiles, and its output stays well-formed."""

from __future__ import annotations

import random
import re
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from icalproxy.core.pipeline import build_feeds
from tests.hostile.markers import leaks
from tests.support import FIXTURES, NOW, ROOT, generated_feed, rules_from, structure_problems, unfolded

RULES = rules_from(
    "sources: {s: {url: s.ics}}\n"
    "feeds:\n"
    "  client: {title: Client}\n"
    "  acme: {title: Acme, where: {subcalendar: 'Client: Acme Corp'}}\n"
    "  busy: {title: Busy, profile: busy}\n"
    "  window: {title: Window, where: {window: {past: 30d, future: 365d}}}\n"
)
CHECKED = ("client", "acme", "busy", "window")


def _logical_lines(data: bytes) -> list[bytes]:
    return re.sub(rb"\r?\n[ \t]", b"", data).replace(b"\r\n", b"\n").split(b"\n")


def _bases() -> list[list[bytes]]:
    files = [FIXTURES / "teamup-jobs.ics", FIXTURES / "teamup-office.ics"]
    files += sorted((ROOT / "tests" / "golden").glob("*/in/*.ics"))
    bases = [_logical_lines(path.read_bytes()) for path in files]
    try:
        data, _ = generated_feed(60, seed=11)
        bases.append(_logical_lines(data))
    except pytest.skip.Exception:
        pass
    return bases


BASES = _bases()


OPERATIONS = ["truncate", "duplicate", "reorder", "delete", "bytes", "huge", "nest", "many", "lower", "rrule"]
rrules = st.builds(
    lambda freq, count, interval, by: f"RRULE:FREQ={freq};COUNT={count};INTERVAL={interval}{by}".encode(),
    st.sampled_from(["SECONDLY", "MINUTELY", "HOURLY", "DAILY", "WEEKLY", "MONTHLY", "YEARLY"]),
    st.sampled_from([1, 3, 52, 10_000, 100_000_000]),
    st.integers(1, 1000),
    st.sampled_from(
        [
            "",
            ";BYMONTH=2;BYMONTHDAY=30",
            ";BYMONTHDAY=31;BYMONTH=4,6",
            ";BYYEARDAY=366;BYMONTH=1",
            ";BYSETPOS=-1;BYDAY=MO",
            ";BYWEEKNO=53;BYDAY=SU",
            ";BYHOUR=25",
            ";BYDAY=+5MO",
        ]
    ),
)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    lines = list(draw(st.sampled_from(BASES)))
    for _ in range(draw(st.integers(0, 6))):
        op = draw(st.sampled_from(OPERATIONS))
        at = draw(st.integers(0, max(len(lines) - 1, 0)))
        if op == "truncate":
            lines = lines[:at]
            if lines and draw(st.booleans()):
                lines[-1] = lines[-1][: draw(st.integers(0, len(lines[-1])))]
        elif op == "duplicate":
            length = draw(st.integers(1, 40))
            lines[at:at] = lines[at : at + length]
        elif op == "reorder":
            segment = lines[at : at + draw(st.integers(2, 30))]
            draw(st.randoms(use_true_random=True)).shuffle(segment)
            lines[at : at + len(segment)] = segment
        elif op == "delete":
            del lines[at : at + draw(st.integers(1, 10))]
        elif op == "bytes" and lines:
            noise = draw(st.binary(min_size=1, max_size=40)).replace(b"\r", b"").replace(b"\n", b"")
            position = draw(st.integers(0, len(lines[at])))
            lines[at] = lines[at][:position] + noise + lines[at][position:]
        elif op == "huge":
            lines.insert(at, b"X-HUGE:" + b"x" * draw(st.integers(10_000, 300_000)))
        elif op == "nest":
            depth = draw(st.integers(1, 60))
            lines[at:at] = [b"BEGIN:X-DEEP"] * depth + [b"X-IN:1"] + [b"END:X-DEEP"] * depth
        elif op == "many":
            lines[at:at] = [b"X-MANY-%d:value %d" % (i, i) for i in range(draw(st.integers(100, 5000)))]
        elif op == "rrule":
            lines.insert(at, draw(rrules))
        elif op == "lower" and lines:
            name, sep, rest = lines[at].partition(b":")
            lines[at] = name.lower() + sep + rest
    data = b"\r\n".join(lines)
    if draw(st.booleans()):  # random folds, also inside multibyte characters
        out, position = bytearray(), 0
        for cut in sorted(draw(st.lists(st.integers(0, len(data)), max_size=30))):
            out += data[position:cut] + b"\r\n "
            position = cut
        data = bytes(out + data[position:])
    if draw(st.booleans()):
        data = data.replace(b"\r\n", b"\n")
    return data


def check(data: bytes) -> None:
    started = time.perf_counter()
    result = build_feeds({"s": data}, RULES, NOW)
    elapsed = time.perf_counter() - started
    assert elapsed < 5 + 5 * len(data) / 1e6, f"{elapsed:.1f}s for {len(data)} bytes"
    for name in CHECKED:
        body = result.feeds[name].body
        assert "SECRET" not in unfolded(body), name
        assert structure_problems(body) == [], name


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(mutated())
def test_mutated_fixtures_never_break_the_pipeline(data: bytes) -> None:
    check(data)


@pytest.mark.slow
@settings(
    max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(mutated())
def test_mutated_fixtures_many_more(data: bytes) -> None:
    check(data)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=3000))
def test_random_bytes_never_break_the_pipeline(data: bytes) -> None:
    check(b"BEGIN:VCALENDAR\r\n" + data + b"\r\nEND:VCALENDAR\r\n")
    check(data)


# ---------------------------------------------------------------- markers in every value

MARKED_RULES = rules_from(
    "sources: {s: {url: s.ics}}\n"
    "statuses: {field: Status, unlisted: hide, values: {Scheduled: Scheduled, Done: Completed}}\n"
    "feeds:\n"
    "  client: {title: Client}\n"
    "  busy: {title: Busy, profile: busy}\n"
    "  window: {title: Window, where: {window: {past: 3650d, future: 3650d}}}\n"
)
MARKER = b"SECRET"
# What a client is meant to see as written: the event's own title and its UID.
SHOWN = frozenset({b"SUMMARY", b"UID"})
PLANTS = ["value", "value", "param", "quoted-param", "tzid", "value-type", "alarm", "class"]


def _name(line: bytes) -> bytes:
    end = min((i for i in (line.find(b":"), line.find(b";")) if i >= 0), default=len(line))
    return line[:end].strip().upper()


def _contexts(lines: list[bytes]) -> list[bytes | None]:
    """The innermost component of each line, exactly as the parser nests them: an END that
    matches nothing open is ignored, and one that closes an outer component closes the inner
    ones too."""
    stack: list[bytes] = []
    found: list[bytes | None] = []
    for line in lines:
        name = _name(line)
        value = line.partition(b":")[2].strip().upper()
        found.append(stack[-1] if stack else None)
        if name == b"BEGIN" and value:
            stack.append(value)
        elif name == b"END" and value in stack:
            while stack.pop() != value:
                pass
    return found


def _plant(line: bytes, how: str, rng: random.Random) -> list[bytes]:
    name, colon, value = line.partition(b":")
    if not colon:
        return [line + MARKER]
    if how == "value":
        at = rng.randint(0, len(value))
        return [name + b":" + value[:at] + MARKER + value[at:]]
    if how == "param":
        return [name + b";X-NOTE=" + MARKER + b":" + value]
    if how == "quoted-param":
        return [name + b';CN="' + MARKER + b' x:y";VALUE="' + MARKER + b'":' + value]
    if how == "tzid":
        return [name + b";TZID=/" + MARKER + b"/Europe/Berlin:" + value]
    if how == "value-type":
        return [name + b";VALUE=" + MARKER + b";RANGE=" + MARKER + b":" + value]
    if how == "alarm":
        head = rng.choice([b"BEGIN:VALARM", b"BEG\r\n IN:VALARM", b"begin:valarm"])
        tail = rng.choice([[b"END:VALARM"], [b"EN\r\n D:VALARM"], []])
        return [line, head, b"SUMMARY:" + MARKER, b"DESCRIPTION:" + MARKER, *tail]
    return [line, b"CLASS:X-" + MARKER]


@st.composite
def marked(draw: st.DrawFn) -> bytes:
    """A mutated fixture with the marker planted in values and parameters of every kind of
    line, the event's own SUMMARY and UID values excepted (a client sees those by design).
    Where and how to plant comes from one seeded generator (cheap to draw, reproducible)."""
    data = draw(mutated())
    rng = draw(st.randoms(use_true_random=True))
    lines = re.sub(rb"\r?\n[ \t]", b"", data).replace(b"\r\n", b"\n").split(b"\n")
    contexts = _contexts(lines)
    rate = rng.choice([0.05, 0.3, 1.0])
    out: list[bytes] = []
    for line, context in zip(lines, contexts, strict=True):
        name = _name(line)
        if name in (b"BEGIN", b"END") or not line or rng.random() > rate:
            out.append(line)
            continue
        how = rng.choice(PLANTS)
        if context == b"VEVENT" and name in SHOWN and how == "value":
            how = "param"
        if context == b"VEVENT" and name in SHOWN and how in ("alarm", "class"):
            out.append(line)
            continue
        out.extend(_plant(line, how, rng))
    return b"\r\n".join(out) + b"\r\n"


def check_marked(data: bytes) -> None:
    result = build_feeds({"s": data}, MARKED_RULES, NOW)
    for name in ("client", "busy", "window"):
        body = result.feeds[name].body
        assert not leaks(body), f"{name}:\n{body.decode('utf-8', 'replace')[:4000]}"
        assert structure_problems(body) == [], name


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(marked())
def test_markers_in_every_value_never_reach_a_redacted_feed(data: bytes) -> None:
    check_marked(data)


@pytest.mark.slow
@settings(
    max_examples=5000, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(marked())
def test_markers_in_every_value_many_more(data: bytes) -> None:
    check_marked(data)
