"""Routing, recurrence safety, merging, redaction and rendering, end to end through the core."""

from __future__ import annotations

from datetime import datetime

import icalendar
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from icalproxy.core.pipeline import build_feeds, parse_sources, render_feeds
from tests.support import NOW, build, calendar, rules_from, structure_problems, unfolded

BERLIN = """BEGIN:VTIMEZONE
TZID:Europe/Berlin
BEGIN:STANDARD
DTSTART:19701025T030000
TZOFFSETFROM:+0200
TZOFFSETTO:+0100
RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU
END:STANDARD
BEGIN:DAYLIGHT
DTSTART:19700329T020000
TZOFFSETFROM:+0100
TZOFFSETTO:+0200
RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU
END:DAYLIGHT
END:VTIMEZONE"""

SERIES = calendar(
    """UID:S1
DTSTAMP:20261101T000000Z
DTSTART;TZID=Europe/Berlin:20261201T080000
DTEND;TZID=Europe/Berlin:20261201T090000
RRULE:FREQ=WEEKLY;COUNT=4
SUMMARY:Weekly service
CATEGORIES:Client: Acme""",
    """UID:S1
DTSTAMP:20261101T000000Z
RECURRENCE-ID;TZID=Europe/Berlin:20261208T080000
DTSTART;TZID=Europe/Berlin:20261208T100000
DTEND;TZID=Europe/Berlin:20261208T110000
SUMMARY:Weekly service (moved to Beta)
CATEGORIES:Client: Beta""",
    """UID:S1
DTSTAMP:20261101T000000Z
RECURRENCE-ID;TZID=Europe/Berlin:20261215T080000
DTSTART;TZID=Europe/Berlin:20261215T090000
DTEND;TZID=Europe/Berlin:20261215T100000
SUMMARY:Weekly service (later)
CATEGORIES:Client: Acme""",
    """UID:D1
DTSTAMP:20261101T000000Z
DTSTART;VALUE=DATE:20261210
RRULE:FREQ=DAILY;COUNT=3
SUMMARY:All-day series
CATEGORIES:Client: Beta""",
    """UID:D1
DTSTAMP:20261101T000000Z
RECURRENCE-ID;VALUE=DATE:20261211
DTSTART;VALUE=DATE:20261212
SUMMARY:All-day moved into Acme
CATEGORIES:Client: Acme""",
    extra=BERLIN,
)

TWO_FEEDS = """
sources: {jobs: {url: x.ics}}
feeds:
  acme: {title: Acme, where: {subcalendar: "Client: Acme"}}
  beta: {title: Beta, where: {subcalendar: "Client: Beta"}}
"""


def events(body: bytes) -> list[icalendar.Event]:
    return list(icalendar.Calendar.from_ical(body).walk("VEVENT"))


def test_moved_override_becomes_exdate_and_standalone_elsewhere() -> None:
    result = build(TWO_FEEDS, jobs=SERIES)
    acme = {(str(e["UID"]), e.get("RECURRENCE-ID") is not None): e for e in events(result.feeds["acme"].body)}
    master = acme[("S1", False)]
    exdates = [d.dt.strftime("%Y%m%dT%H%M") for x in [master["EXDATE"]] for d in x.dts]
    assert exdates == ["20261208T0800"]
    assert master["EXDATE"].dts[0].dt.tzinfo is not None  # same TZID type as RECURRENCE-ID
    assert ("S1", True) in acme  # the override that stayed in Acme
    standalone = acme[("D1-R20261211", False)]
    assert standalone.get("RECURRENCE-ID") is None and standalone.get("RRULE") is None
    assert standalone.decoded("DTSTART").isoformat() == "2026-12-12"  # all-day stays a DATE

    beta = {str(e["UID"]): e for e in events(result.feeds["beta"].body)}
    assert set(beta) == {"S1-R20261208T080000", "D1"}
    assert [d.dt.isoformat() for d in beta["D1"]["EXDATE"].dts] == ["2026-12-11"]
    assert "VTIMEZONE" in result.feeds["beta"].body.decode()


def test_report_counts_per_feed() -> None:
    report = build(TWO_FEEDS, jobs=SERIES).report.feeds["acme"]
    assert (report.events_in, report.events_out) == (2, 3)
    assert report.dropped["moved occurrence excluded (EXDATE)"] == 1
    assert report.standalone == 1


def test_output_is_deterministic_and_independent_of_input_order() -> None:
    first = build(TWO_FEEDS, jobs=SERIES)
    again = build(TWO_FEEDS, jobs=SERIES)
    assert first.feeds["acme"].body == again.feeds["acme"].body
    text = SERIES.decode()
    head, _, rest = text.partition("BEGIN:VEVENT")
    blocks = ("BEGIN:VEVENT" + rest.removesuffix("END:VCALENDAR\r\n")).split("BEGIN:VEVENT")[1:]
    reordered = (head + "".join("BEGIN:VEVENT" + block for block in reversed(blocks))).encode()
    reordered += b"END:VCALENDAR\r\n"
    assert build(TWO_FEEDS, jobs=reordered).feeds["acme"].body == first.feeds["acme"].body


def test_a_sink_gets_every_feed_as_rendered_and_the_result_keeps_none() -> None:
    """`render` writes each feed as soon as it is rendered (memory holds one at a time)."""
    kept = build(TWO_FEEDS, jobs=SERIES)
    handed: dict[str, bytes] = {}
    sources = parse_sources({"jobs": SERIES})
    streamed = render_feeds(
        sources, rules_from(TWO_FEEDS), NOW, sink=lambda feed: handed.update({feed.name: feed.body})
    )
    assert streamed.feeds == {} and set(handed) == set(kept.feeds)
    assert all(handed[name] == feed.body for name, feed in kept.feeds.items())
    assert streamed.report.as_dict() == kept.report.as_dict()


def test_sources_merge_by_uid_newest_sequence_wins() -> None:
    old = calendar("UID:M\nDTSTART:20261201T080000Z\nSEQUENCE:1\nSUMMARY:old\nCATEGORIES:Client: Acme")
    new = calendar("UID:M\nDTSTART:20261201T090000Z\nSEQUENCE:2\nSUMMARY:new\nCATEGORIES:Client: Acme")
    text = """
sources: {a: {url: a.ics}, b: {url: b.ics}}
feeds: {acme: {title: Acme, from: [a, b], where: {subcalendar: "Client: Acme"}}}
"""
    for sources in ({"a": old, "b": new}, {"a": new, "b": old}):
        body = build(text, **sources).feeds["acme"].body
        assert [str(e["SUMMARY"]) for e in events(body)] == ["new"]


def test_feed_without_where_takes_everything_and_source_condition() -> None:
    text = """
sources: {a: {url: a.ics}, b: {url: b.ics}}
feeds:
  all: {title: All}
  only-b: {title: B, where: {source: b}}
"""
    result = build(
        text,
        a=calendar("UID:1\nDTSTART:20261201T080000Z"),
        b=calendar("UID:2\nDTSTART:20261201T080000Z"),
    )
    assert len(events(result.feeds["all"].body)) == 2
    assert [str(e["UID"]) for e in events(result.feeds["only-b"].body)] == ["2"]


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ('{subcalendar: "Client: *"}', {"acme", "beta"}),
        ('{subcalendar: ["Client: Beta", "Team: Jo"]}', {"beta", "jo"}),
        ("{field: {name: Status, equals: done}}", {"acme"}),
        ("{field: {name: Status, in: [Scheduled, On hold]}}", {"beta", "jo"}),
        ("{field: {name: Status, regex: '^Sched'}}", {"beta"}),
        ("{field: {name: Priority, equals: high}}", {"jo"}),
        ("{field: {name: Status, present: false}}", set()),
        ("{summary: '(?i)boiler'}", {"acme"}),
        ('{not: {subcalendar: "Client: *"}}', {"jo"}),
        ("{any: [{summary: boiler}, {summary: Valve}]}", {"acme", "beta"}),
        (
            '{all: [{subcalendar: "Client: *"}, {field: {name: Status, equals: Scheduled}}]}',
            {"beta"},
        ),
        ("{window: {past: 7d, future: 30d}}", {"acme", "beta"}),
        ("{window: {future: 1d}}", {"acme"}),
    ],
)
def test_where_conditions(where: str, expected: set[str]) -> None:
    source = calendar(
        "UID:acme\nDTSTART:20261124T080000Z\nSUMMARY:boiler\nCATEGORIES:Client: Acme\nX-TEAMUP-STATUS:Done",
        "UID:beta\nDTSTART:20261210T080000Z\nSUMMARY:Valve\nCATEGORIES:Client: Beta\n"
        "DESCRIPTION:Status: Scheduled",
        "UID:jo\nDTSTART:20270610T080000Z\nSUMMARY:Van\nCATEGORIES:Team: Jo\n"
        "X-TEAMUP-STATUS:On hold\nX-TEAMUP-PRIORITY:High",
    )
    text = f"sources: {{s: {{url: s.ics}}}}\nfeeds: {{f: {{title: F, where: {where}}}}}\n"
    body = build(text, s=source).feeds["f"].body
    assert {str(e["UID"]) for e in events(body)} == expected


def test_a_description_status_line_split_by_a_fold_is_still_read() -> None:
    source = calendar("UID:f\nDTSTART:20261201T080000Z\nSUMMARY:Valve\nDESCRIPTION:PLACEHOLDER")
    source = source.replace(b"PLACEHOLDER", b"Bring ladder\\nSta\r\n tus: Scheduled\\nSECRET")
    text = (
        "sources: {s: {url: s.ics}}\n"
        "feeds: {f: {title: F, where: {field: {name: Status, equals: Scheduled}}}}\n"
    )
    body = build(text, s=source).feeds["f"].body
    assert [str(e["SUMMARY"]) for e in events(body)] == ["Valve — Scheduled"]
    assert b"SECRET" not in body


def test_window_covers_recurring_series_until_their_end() -> None:
    source = calendar(
        "UID:old-but-recurring\nDTSTART:20250101T080000Z\nRRULE:FREQ=WEEKLY;COUNT=200",
        "UID:old-and-done\nDTSTART:20250101T080000Z\nRRULE:FREQ=WEEKLY;COUNT=3",
        "UID:forever\nDTSTART:20200101T080000Z\nRRULE:FREQ=YEARLY",
        "UID:until-passed\nDTSTART:20250101T080000Z\nRRULE:FREQ=DAILY;UNTIL=20250301T000000Z",
    )
    text = "sources: {s: {url: s.ics}}\nfeeds: {f: {title: F, where: {window: {past: 30d}}}}\n"
    body = build(text, s=source).feeds["f"].body
    assert {str(e["UID"]) for e in events(body)} == {"old-but-recurring", "forever"}


COSTLY_RULES = (
    "FREQ=DAILY;COUNT=10;BYMONTH=2;BYMONTHDAY=30",  # never matches: dateutil walks to 9999
    "FREQ=YEARLY;COUNT=5;BYMONTH=4;BYMONTHDAY=31",
    "FREQ=SECONDLY;COUNT=100000000",  # 3 years of seconds before it ends
    "FREQ=MINUTELY;COUNT=9;BYMONTH=2;BYMONTHDAY=31",
)


def test_costly_count_rules_are_cut_short_reported_and_kept() -> None:
    """A COUNT rule that would take dateutil seconds or hours to expand is given up after its
    steps: the series counts as open-ended (kept by `window`), and the report names its line.
    80 of them overdraw the run's total, so the cheap rule after them is cut as well, while
    the one before them was expanded exactly (and left out: it ended long ago)."""
    costly = [
        f"UID:costly-{i}\nDTSTART:20150101T100000Z\nRRULE:{rule}\nSUMMARY:Costly {i}"
        for i, rule in enumerate(COSTLY_RULES * 20)
    ]
    source = calendar(
        "UID:old-and-done\nDTSTART:20250101T080000Z\nRRULE:FREQ=DAILY;COUNT=3",
        *costly,
        "UID:running\nDTSTART:20250101T080000Z\nRRULE:FREQ=DAILY;COUNT=900",
    )
    text = "sources: {s: {url: s.ics}}\nfeeds: {f: {title: F, where: {window: {past: 30d}}}}\n"
    result = build(text, s=source)
    uids = {str(e["UID"]) for e in events(result.feeds["f"].body)}
    assert uids == {f"costly-{i}" for i in range(80)} | {"running"}
    cut = [p for p in result.report.problems if "RRULE too costly" in p.message]
    assert len(cut) == 81 and len({p.line for p in cut}) == 81
    assert str(cut[0]).startswith("s:9:")  # the first costly event's BEGIN:VEVENT


def test_rule_steps_count_the_periods_dateutil_walks() -> None:
    """The budget must see dateutil's inner loop, not only what it yields: a rule that never
    matches yields nothing at all."""
    from icalproxy.core.values import RecurrenceBudget, RecurrenceTooCostly, rrule_end

    budget = RecurrenceBudget(per_rule=1000, total=5000)
    with pytest.raises(RecurrenceTooCostly):
        rrule_end("FREQ=DAILY;COUNT=10;BYMONTH=2;BYMONTHDAY=30", datetime(2026, 1, 1), NOW, budget)
    assert 1000 < 5000 - budget.left <= 1001
    for _ in range(4):  # the rest of the run's total, then nothing
        with pytest.raises(RecurrenceTooCostly):
            rrule_end("FREQ=DAILY;COUNT=10;BYMONTH=4;BYMONTHDAY=31", datetime(2026, 1, 1), NOW, budget)
    with pytest.raises(RecurrenceTooCostly):
        rrule_end("FREQ=DAILY;COUNT=2", datetime(2015, 1, 1), NOW, budget)


@settings(max_examples=300, deadline=None)
@given(
    freq=st.sampled_from(["DAILY", "WEEKLY", "MONTHLY", "YEARLY", "HOURLY"]),
    count=st.integers(1, 60),
    interval=st.integers(1, 4),
    by=st.sampled_from(
        ["", ";BYDAY=MO,WE,FR", ";BYMONTHDAY=1,15,31", ";BYMONTH=2,6;BYDAY=-1SU", ";BYHOUR=9,17"]
    ),
    start=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2030, 1, 1)),
)
def test_rule_end_agrees_with_dateutil(
    freq: str, count: int, interval: int, by: str, start: datetime
) -> None:
    """Counted expansion is dateutil's own: the same last occurrence, or the same first one
    after the limit."""
    from dateutil.rrule import rrulestr

    from icalproxy.core.values import RecurrenceBudget, rrule_end

    start = start.replace(microsecond=0)
    rule = f"FREQ={freq};COUNT={count};INTERVAL={interval}{by}"
    try:
        occurrences = list(rrulestr(rule, dtstart=start))
    except ValueError:  # e.g. an INTERVAL that never reaches a BYHOUR: unreadable, so None
        occurrences = []
    after = [o for o in occurrences if o > NOW]
    expected = after[0] if after else (occurrences[-1] if occurrences else None)
    assert rrule_end(rule, start, NOW, RecurrenceBudget(per_rule=10**7, total=10**7)) == expected


CLIENT_EVENT = calendar(
    """UID:L1
DTSTAMP:20261101T000000Z
DTSTART;TZID=Europe/Berlin;X-FOO=bar:20261201T080000
DTEND;TZID=Europe/Berlin:20261201T090000
SUMMARY;ALTREP="https://SECRET.example/x":Repair – see https://SECRET.example/a and mail SECRET@x.ex
LOCATION:Street 1 SECRET
DESCRIPTION:Status: Waiting\\nSECRET note https://SECRET.example
URL:https://SECRET.example/e
ATTACH:https://SECRET.example/f.pdf
ATTENDEE;CN=SECRET:mailto:SECRET@x.example
ORGANIZER:mailto:SECRET@x.example
CONTACT:SECRET
COMMENT:SECRET
CLASS:PUBLIC
X-ALT-DESC;FMTTYPE=text/html:<a href="https://SECRET">x</a>
X-TEAMUP-STATUS:Waiting
X-TEAMUP-COST:SECRET
CATEGORIES:Client: Acme,Internal: SECRET
BEGIN:VALARM
ACTION:DISPLAY
DESCRIPTION:SECRET
TRIGGER:-PT5M
END:VALARM""",
    extra=BERLIN + "\nX-WR-CALDESC:SECRET\nBEGIN:VTODO\nUID:todo\nSUMMARY:SECRET\nEND:VTODO"
    "\nBEGIN:VJOURNAL\nUID:j\nSUMMARY:SECRET\nEND:VJOURNAL",
)


@pytest.mark.parametrize("profile", ["client", "busy"])
def test_client_and_busy_keep_nothing_internal(profile: str) -> None:
    text = f"sources: {{s: {{url: s.ics}}}}\nfeeds: {{f: {{title: F, profile: {profile}}}}}\n"
    body = build(text, s=CLIENT_EVENT).feeds["f"].body
    assert "SECRET" not in unfolded(body)
    event = events(body)[0]
    assert set(event) <= {"UID", "DTSTAMP", "DTSTART", "DTEND", "SUMMARY", "DESCRIPTION"}
    assert event["DTSTART"].params.get("X-FOO") is None
    assert structure_problems(body) == []


def test_client_summary_is_scrubbed_and_status_is_shown_through_catalogue() -> None:
    text = """
sources: {s: {url: s.ics}}
statuses:
  values:
    Waiting: {label: Delayed, description: We wait for a part.}
feeds: {f: {title: F}}
"""
    event = events(build(text, s=CLIENT_EVENT).feeds["f"].body)[0]
    assert str(event["SUMMARY"]) == "Repair – see and mail — Delayed"
    assert str(event["DESCRIPTION"]) == "Delayed\nWe wait for a part."


def test_status_catalogue_hides_unlisted_and_hidden_values() -> None:
    source = calendar(
        "UID:a\nDTSTART:20261201T080000Z\nSUMMARY:A\nX-TEAMUP-STATUS:Secret internal state",
        "UID:b\nDTSTART:20261201T080000Z\nSUMMARY:B\nX-TEAMUP-STATUS:On hold",
        "UID:c\nDTSTART:20261201T080000Z\nSUMMARY:C\nDESCRIPTION:Notes\\nstatus: done",
    )
    text = """
sources: {s: {url: s.ics}}
statuses: {values: {On hold: {show: false}, Done: Completed}}
feeds: {f: {title: F}}
"""
    shown = {str(e["UID"]): str(e["SUMMARY"]) for e in events(build(text, s=source).feeds["f"].body)}
    assert shown == {"a": "A", "b": "B", "c": "C — Completed"}
    no_catalogue = "sources: {s: {url: s.ics}}\nfeeds: {f: {title: F}}\n"
    shown = {str(e["UID"]): str(e["SUMMARY"]) for e in events(build(no_catalogue, s=source).feeds["f"].body)}
    assert shown["a"] == "A — Secret internal state"


def test_technician_keeps_location_and_listed_details_only() -> None:
    source = calendar(
        "UID:t\nDTSTART:20261201T080000Z\nSUMMARY:Fix\nLOCATION:Hafenstraße 12\n"
        "DESCRIPTION:Status: Done\\nJob type: Boiler service\\nBring ladder\\nCost: 300 EUR\\n"
        "Portal: https://p.example/x\\nAccess notes: key with the janitor\\nMail: a@b.example\\n"
        "Contact phone: +49 40 555 1234 or jo@b.example\nX-TEAMUP-MATERIALS:Valve DN20\n"
        "CATEGORIES:Technician: Jo,Internal: Debt collection,Client: Other"
    )
    text = "sources: {s: {url: s.ics}}\nfeeds: {f: {title: F, profile: technician}}\n"
    event = events(build(text, s=source).feeds["f"].body)[0]
    assert str(event["LOCATION"]) == "Hafenstraße 12"
    assert str(event["DESCRIPTION"]) == (
        "Done\nJob type: Boiler service\nMaterials: Valve DN20\nAccess notes: key with the janitor\n"
        "Contact phone: +49 40 555 1234 or"
    )
    assert event["CATEGORIES"].cats == ["Technician: Jo"]


def test_custom_profile_with_client_facing_categories_and_phone_scrub() -> None:
    source = calendar(
        "UID:m\nDTSTART:20261201T080000Z\nSUMMARY:Job call 040 555 1234\n"
        "CATEGORIES:Client: Acme,Internal: Fleet,Technician: Jo"
    )
    text = """
sources: {s: {url: s.ics}}
profiles:
  master: {categories: client-facing, client_facing: ["Client: *"], scrub: {phones: true},
           summary: "{summary}", description: null}
feeds: {f: {title: F, profile: master}}
"""
    event = events(build(text, s=source).feeds["f"].body)[0]
    assert event["CATEGORIES"].cats == ["Client: Acme"]
    assert str(event["SUMMARY"]) == "Job call"
    assert "DESCRIPTION" not in event


def test_private_events_follow_the_profile() -> None:
    source = calendar("UID:p\nDTSTART:20261201T080000Z\nSUMMARY:SECRET talk\nCLASS:PRIVATE")
    for mode, expected in (("busy", ["Reserved"]), ("drop", []), ("show", ["SECRET talk"])):
        text = (
            "sources: {s: {url: s.ics}}\n"
            f"profiles: {{p: {{private_events: {mode}}}}}\nfeeds: {{f: {{title: F, profile: p}}}}\n"
        )
        assert [str(e["SUMMARY"]) for e in events(build(text, s=source).feeds["f"].body)] == expected


def test_class_is_kept_when_a_profile_keeps_it_and_a_kept_status_still_feeds_the_template() -> None:
    source = calendar(
        "UID:a\nDTSTART:20261201T080000Z\nSUMMARY:Job\nCLASS:PUBLIC\nX-TEAMUP-STATUS:Done",
        "UID:b\nDTSTART:20261202T080000Z\nSUMMARY:Job\nCLASS;X-FOO=1:PUBLIC",
        "UID:c\nDTSTART:20261203T080000Z\nSUMMARY:Job\nCLASS:CONFIDENTIAL",
    )
    text = (
        "sources: {s: {url: s.ics}}\n"
        "profiles: {p: {keep: [CLASS, X-TEAMUP-STATUS], private_events: show}}\n"
        "feeds: {f: {title: F, profile: p}, plain: {title: P}}\n"
    )
    result = build(text, s=source)
    kept = {str(e["UID"]): e for e in events(result.feeds["f"].body)}
    assert [str(kept[uid]["CLASS"]) for uid in "abc"] == ["PUBLIC", "PUBLIC", "CONFIDENTIAL"]
    assert str(kept["a"]["X-TEAMUP-STATUS"]) == "Done"
    assert str(kept["a"]["SUMMARY"]) == "Job — Done"
    plain = {str(e["UID"]): e for e in events(result.feeds["plain"].body)}
    assert all("CLASS" not in event for event in plain.values())
    assert str(plain["c"]["SUMMARY"]) == "Reserved"


def test_a_feed_over_a_megabyte_is_flagged_for_google() -> None:
    jobs = [f"UID:j{i}\nDTSTART:20261201T080000Z\nSUMMARY:Job {i} {'x' * 400}" for i in range(2500)]
    text = (
        "sources: {s: {url: s.ics}}\n"
        "feeds: {big: {title: Big}, small: {title: S, where: {summary: 'Job 7 '}}}\n"
    )
    result = build(text, s=calendar(*jobs))
    assert len(result.feeds["big"].body) > 1_000_000
    assert any("Google Calendar" in note for note in result.report.feeds["big"].notes)
    assert result.report.feeds["small"].notes == []


def test_floating_times_take_the_calendars_x_wr_timezone() -> None:
    """Google and others export floating times plus X-WR-TIMEZONE; a subscriber elsewhere must
    still see the intended hour, so the zone becomes an explicit TZID with its VTIMEZONE."""
    series = (
        "UID:s\nDTSTART:20261201T080000\nDTEND:20261201T090000\nRRULE:FREQ=WEEKLY;COUNT=3\n"
        "EXDATE:20261215T080000\nSUMMARY:Weekly\nCATEGORIES:Client: Acme",
        "UID:s\nRECURRENCE-ID:20261208T080000\nDTSTART:20261208T100000\nSUMMARY:Moved\n"
        "CATEGORIES:Client: Beta",
        "UID:u\nDTSTART:20261202T080000Z\nSUMMARY:UTC\nCATEGORIES:Client: Acme",
        "UID:d\nDTSTART;VALUE=DATE:20261203\nSUMMARY:Day\nCATEGORIES:Client: Acme",
    )
    text = (
        "sources: {s: {url: s.ics}}\nfeeds: {acme: {title: A, where: {subcalendar: 'Client: Acme'}},"
        " beta: {title: B, where: {subcalendar: 'Client: Beta'}}}\n"
    )
    result = build(text, s=calendar(*series, extra="X-WR-TIMEZONE:Europe/Berlin"))
    acme = unfolded(result.feeds["acme"].body)
    for line in (
        "DTSTART;TZID=Europe/Berlin:20261201T080000",
        "DTEND;TZID=Europe/Berlin:20261201T090000",
        "EXDATE;TZID=Europe/Berlin:20261215T080000",
        "EXDATE;TZID=Europe/Berlin:20261208T080000",  # the occurrence moved to Beta
        "DTSTART:20261202T080000Z",
        "DTSTART;VALUE=DATE:20261203",
        "BEGIN:VTIMEZONE\r\nTZID:Europe/Berlin",
    ):
        assert line in acme, line
    assert structure_problems(result.feeds["acme"].body) == []
    moved = events(result.feeds["beta"].body)[0]
    assert moved["DTSTART"].dt.utcoffset().total_seconds() == 3600  # 10:00 in Berlin, CET
    assert str(moved["DTSTART"].dt.tzinfo) in ("Europe/Berlin", "CET")

    elsewhere = build(text, s=calendar(*series, extra="X-WR-TIMEZONE:Nowhere/Zone")).feeds["acme"]
    assert "DTSTART:20261201T080000\r\n" in unfolded(elsewhere.body)  # no definition: stays floating
    plain = build(text, s=calendar(*series)).feeds["acme"]
    assert "DTSTART:20261201T080000\r\n" in unfolded(plain.body) and "VTIMEZONE" not in unfolded(plain.body)


def test_calendar_header_and_referenced_timezones_only() -> None:
    source = calendar(
        "UID:a\nDTSTART;TZID=Europe/Berlin:20261201T080000\nSUMMARY:A",
        extra=BERLIN + "\n" + BERLIN.replace("Europe/Berlin", "Unused/Zone"),
    )
    text = (
        "sources: {s: {url: s.ics}}\npublish: {refresh_interval: 1h}\n"
        "feeds: {f: {title: 'Acme; Corp, Ltd'}}\n"
    )
    body = build(text, s=source).feeds["f"].body.decode()
    header = body.split("BEGIN:VTIMEZONE")[0].split("\r\n")
    assert header[:9] == [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        header[2],
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        "NAME:Acme\\; Corp\\, Ltd",
        "X-WR-CALNAME:Acme\\; Corp\\, Ltd",
        "REFRESH-INTERVAL;VALUE=DURATION:PT1H",
        "X-PUBLISHED-TTL:PT1H",
    ]
    assert header[2].startswith("PRODID:-//icalproxy//")
    assert body.count("BEGIN:VTIMEZONE") == 1 and "Unused/Zone" not in body


def test_missing_vtimezone_is_built_from_tzdata_or_floated() -> None:
    source = calendar(
        "UID:a\nDTSTART;TZID=America/New_York:20261201T080000\nSUMMARY:A",
        "UID:b\nDTSTART;TZID=Nowhere Standard Time:20261201T080000\nSUMMARY:B",
    )
    result = build("sources: {s: {url: s.ics}}\nfeeds: {f: {title: F}}\n", s=source)
    body = result.feeds["f"].body
    assert b"TZID:America/New_York" in body
    assert b"Nowhere" not in body
    assert structure_problems(body) == []
    assert any("floats" in str(problem) for problem in result.report.problems)


def test_bad_values_are_dropped_not_passed_to_clients() -> None:
    source = calendar(
        "UID:a\nDTSTART:20261201T080000Z\nDTEND:tomorrow\nRRULE:FREQ=SOMETIMES\n"
        "EXDATE:notadate\nSEQUENCE:x\nSTATUS:MAYBE\nSUMMARY:A"
    )
    body = build("sources: {s: {url: s.ics}}\nfeeds: {f: {title: F}}\n", s=source).feeds["f"].body
    event = events(body)[0]
    assert set(event) == {"UID", "DTSTART", "DTSTAMP", "SUMMARY"}


def test_source_without_data_is_reported_not_rendered() -> None:
    result = build_feeds({}, rules_from("sources: {s: {url: s.ics}}\nfeeds: {f: {title: F}}\n"), NOW)
    assert result.feeds == {}
    assert result.report.feeds["f"].notes == ["not rendered: no data yet from s"]


def test_regression_control_character_or_space_inside_tzid() -> None:
    """Found by fuzzing: ``DTEND;TZID=\\x00 Europe/Berlin`` kept a TZID no VTIMEZONE defined."""
    source = calendar(
        "UID:a\nDTSTART;TZID=Europe/Berlin:20261201T080000\nDTEND;TZID=\x00 Europe/Berlin:20261201T090000\n"
        "SUMMARY:A",
        "UID:b\nDTSTART;TZID= Europe/Berlin :20261201T080000\nSUMMARY:B",
        extra=BERLIN,
    )
    body = build("sources: {s: {url: s.ics}}\nfeeds: {f: {title: F}}\n", s=source).feeds["f"].body
    assert structure_problems(body) == []
    assert body.count(b";TZID=Europe/Berlin:") == 3 and b"\x00" not in body
