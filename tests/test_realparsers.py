"""The batch harness of tests/realparsers.py: its drivers say what feedcheck's own helpers say,
file for file, and one hanging or dying file costs only that file."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests import realparsers
from tests.realparsers import Parser, check_files, feedcheck_verdict, need_parsers, run_batch
from tests.support import CORPUS, FEEDCHECK

HELPERS = FEEDCHECK.parent

EVENT = "BEGIN:VEVENT\nUID:{uid}\nDTSTAMP:20260101T000000Z\n{body}\nEND:VEVENT\n"
ZONE = (
    "BEGIN:VTIMEZONE\nTZID:Custom/Zone\nBEGIN:STANDARD\nDTSTART:19700101T000000\n"
    "TZOFFSETFROM:+0100\nTZOFFSETTO:+0100\nEND:STANDARD\nEND:VTIMEZONE\n"
)


def ics(*parts: str, head: str = "VERSION:2.0\nPRODID:-//test//EN\n") -> bytes:
    return ("BEGIN:VCALENDAR\n" + head + "".join(parts) + "END:VCALENDAR\n").replace("\n", "\r\n").encode()


# Inputs each parser accepts or rejects, and state one file could leave to the next.
CASES = {
    "plain.ics": ics(EVENT.format(uid="a", body="DTSTART:20260105T100000Z\nRRULE:FREQ=WEEKLY;COUNT=5")),
    "zone.ics": ics(ZONE, EVENT.format(uid="b", body="DTSTART;TZID=Custom/Zone:20260105T100000")),
    # The zone of the file before is not defined here: a fresh process does not know it.
    "zone-gone.ics": ics(EVENT.format(uid="c", body="DTSTART;TZID=Custom/Zone:20260105T100000")),
    "period-rdate.ics": ics(
        EVENT.format(
            uid="d",
            body="DTSTART:20260105T100000Z\nDTEND:20260105T110000Z\n"
            "RDATE;VALUE=PERIOD:20260110T100000Z/20260110T120000Z",
        )
    ),
    "bad-date.ics": ics(EVENT.format(uid="e", body="DTSTART:2026-01-05")),
    "bad-rrule.ics": ics(EVENT.format(uid="f", body="DTSTART:20260105T100000Z\nRRULE:FREQ=SOMETIMES")),
    "no-component.ics": ics(),
    "two-calendars.ics": ics(EVENT.format(uid="g", body="DTSTART:20260105"))
    + ics(EVENT.format(uid="h", body="DTSTART:20260106")),
    "not-a-calendar.ics": b"BEGIN:VEVENT\r\nUID:x\r\nEND:VEVENT\r\n",
    "unterminated.ics": ics(EVENT.format(uid="i", body="DTSTART:20260105"))[:-15],
    "latin1.ics": ics(EVENT.format(uid="j", body="DTSTART:20260105\nSUMMARY:Caf\xe9")).replace(
        "é".encode(), b"\xe9"
    ),
}
# Corpus files the parsers disagree on (skipped when ../shared is absent).
CORPUS_CASES = (
    "ical4j__ical4j/src__test__resources__samples__valid__bitfire1.ics",
    "allenporter__ical/tests__compat__testdata__office_365_invalid_timezone.ics",
    "collective__icalendar/src__icalendar__tests__calendars__issue_218_bad_tzid.ics",
)


def helper_result(name: str, path: Path) -> dict:
    """What feedcheck's own single-file helper prints for one file."""
    home = realparsers.FEEDCHECK_HOME
    command = {
        "ical.js": [
            "node",
            str(HELPERS / "icaljs_check.mjs"),
            "--icaljs",
            str(home / "node" / "node_modules" / "ical.js"),
            "--from",
            realparsers.WINDOW_FROM,
            "--years",
            str(realparsers.WINDOW_YEARS),
        ],
        "icalendar": [str(home / "venv" / "bin" / "python"), "-I", str(HELPERS / "icalendar_check.py")],
        "libical": [realparsers.LIBICAL_PYTHON, "-I", str(HELPERS / "libical_check.py")],
    }[name]
    output = subprocess.run([*command, str(path)], capture_output=True, text=True, timeout=120).stdout
    return json.loads(output.strip().splitlines()[-1])


@pytest.mark.slow
def test_batch_drivers_say_what_feedchecks_helpers_say(tmp_path: Path) -> None:
    chosen = need_parsers()
    paths = []
    for name, data in CASES.items():
        paths.append(tmp_path / name)
        paths[-1].write_bytes(data)
    paths += [CORPUS / name for name in CORPUS_CASES if (CORPUS / name).exists()]
    batch = check_files(paths, chosen)
    for name in chosen:
        for path, result in zip(paths, batch[name], strict=True):
            assert result == helper_result(name, path), f"{name} on {path.name}"
    # The cases are worth comparing: each parser accepts some and rejects some.
    for name in chosen:
        verdicts = {result["ok"] for result in batch[name]}
        assert verdicts == {True, False}, name
    assert not batch["ical.js"][paths.index(tmp_path / "period-rdate.ics")]["ok"]


FAKE = """
import json, os, sys, time
for path in open(sys.argv[1]).read().splitlines():
    text = open(path).read()
    if text == "hang":
        time.sleep(60)
    if text == "die":
        sys.stderr.write("segmentation fault (pretend)\\n")
        os._exit(9)
    print(json.dumps({"ok": text.startswith("ok"), "events": 0, "file": os.path.basename(path)}), flush=True)
"""


@pytest.fixture
def fake(tmp_path: Path) -> Parser:
    driver = tmp_path / "fake_driver.py"
    driver.write_text(textwrap.dedent(FAKE))
    return Parser("fake", (sys.executable, str(driver)))


def files(folder: Path, *texts: str) -> list[Path]:
    paths = []
    for number, text in enumerate(texts):
        paths.append(folder / f"{number}.ics")
        paths[-1].write_text(text)
    return paths


def test_a_hanging_or_dying_file_costs_only_that_file(tmp_path: Path, fake: Parser) -> None:
    paths = files(tmp_path, "ok", "hang", "ok", "die", "no", "ok")
    results = run_batch(fake, paths, timeout=3)
    assert [result["ok"] for result in results] == [True, False, True, False, False, True]
    assert results[1]["error"] == "timed out after 3s"
    assert results[3]["error"] == "helper exited 9: segmentation fault (pretend)"
    assert [result.get("file") for result in results] == ["0.ics", None, "2.ics", None, "4.ics", "5.ics"]


def test_chunks_run_in_parallel_and_come_back_in_order(
    tmp_path: Path, fake: Parser, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(realparsers, "CHUNK", 3)
    paths = files(tmp_path, *(("ok", "no")[n % 3 == 0] for n in range(20)))
    results = check_files(paths, {"one": fake, "two": fake}, workers=4)
    for name in ("one", "two"):
        assert [result["file"] for result in results[name]] == [path.name for path in paths]
        assert [result["ok"] for result in results[name]] == [n % 3 != 0 for n in range(20)]


def test_a_missing_parser_is_named(tmp_path: Path) -> None:
    assert "not found" in (Parser("gone", (str(tmp_path / "nothing"),)).missing() or "")
    broken = tmp_path / "broken.py"
    broken.write_text("import sys\nprint('bindings not available', file=sys.stderr)\nsys.exit(3)\n")
    reason = Parser("broken", (sys.executable, str(broken))).missing() or ""
    assert "exit 3: bindings not available" in reason


def test_the_verdict_is_feedchecks() -> None:
    passing = {"ical.js": {"ok": True, "events": 2}, "libical": {"ok": True, "events": 2}}
    assert feedcheck_verdict(([], 2), passing) == []
    assert feedcheck_verdict((["check:crlf: bare CR"], 2), passing) == ["check:crlf: bare CR"]
    rejected = {**passing, "icalendar": {"ok": False, "error": "from_ical: ValueError: x"}}
    assert feedcheck_verdict(([], 2), rejected) == ["icalendar: from_ical: ValueError: x"]
    dropped = {**passing, "libical": {"ok": True, "events": 1}}
    assert feedcheck_verdict(([], 2), dropped) == [
        "check:parsers-agree: VEVENT counts differ: structure=2, ical.js=2, libical=1"
    ]
