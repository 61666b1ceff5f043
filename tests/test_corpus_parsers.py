"""Every output of every corpus file through feedcheck's real client parsers (issue 15).

Each of the 3,836 files of ../shared/corpus goes through the four feeds of test_corpus.py. Every
output of a file that icalendar, ical.js or libical accepts as input must pass all of feedcheck:
ical.js, icalendar, libical, the structure checks and check:parsers-agree. The parsers run in
batches (tests/realparsers.py), with the recurrence window pinned to 2026-01-01 plus two years.
The test prints, per parser, how many inputs and how many outputs it accepts; with
ICALPROXY_CORPUS_REPORT=FILE it also writes every failure to FILE (corpus file, feed, failure).
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from icalproxy.core.pipeline import build_feeds
from tests.realparsers import (
    PARSERS,
    WINDOW_FROM,
    WINDOW_YEARS,
    Result,
    accepted,
    check_files,
    feedcheck_verdict,
    need_parsers,
)
from tests.support import CORPUS, NOW, need_shared, rules_from, structure_report
from tests.test_corpus import RULES, corpus_files

pytestmark = pytest.mark.slow


def test_every_output_of_a_readable_input_passes_feedcheck(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    need_shared(CORPUS)
    chosen = need_parsers()
    started = time.monotonic()
    files = corpus_files()
    assert len(files) > 3000
    rules = rules_from(RULES)
    out = tmp_path / "out"
    out.mkdir()

    # Byte-equal files (572 of the corpus, mostly zoneinfo) are read and rendered once.
    first: dict[str, int] = {}
    same = [first.setdefault(hashlib.sha256(f.read_bytes()).hexdigest(), n) for n, f in enumerate(files)]
    unique = sorted(first.values())

    # The parsers read the inputs while the pipeline renders the outputs.
    with ThreadPoolExecutor(max_workers=1) as background:
        reading = background.submit(check_files, [files[n] for n in unique], chosen)
        rendered: dict[int, list[tuple[str, str]]] = {}  # file index -> (feed, body hash)
        bodies: dict[str, Path] = {}  # hash -> written file: equal outputs are checked once
        checks: dict[str, tuple[list[str], int]] = {}
        for index in unique:
            result = build_feeds({"corpus": files[index].read_bytes()}, rules, NOW)
            rendered[index] = []
            for feed in result.feeds.values():
                key = hashlib.sha256(feed.body).hexdigest()
                if key not in bodies:
                    bodies[key] = out / f"{key[:24]}.ics"
                    bodies[key].write_bytes(feed.body)
                    checks[key] = structure_report(feed.body)
                rendered[index].append((feed.name, key))
        read = reading.result()
    of_unique = {name: dict(zip(unique, read[name], strict=True)) for name in chosen}
    inputs = {name: [of_unique[name][n] for n in same] for name in chosen}
    outputs = [(index, feed, key) for index, n in enumerate(same) for feed, key in rendered[n]]
    keys = list(bodies)
    checked = check_files([bodies[key] for key in keys], chosen)
    by_body = {name: dict(zip(keys, checked[name], strict=True)) for name in chosen}

    readable = {index for index in range(len(files)) if any(inputs[name][index]["ok"] for name in chosen)}
    failures: list[tuple[str, str, str]] = []  # (corpus file, feed, failure)
    passing = 0  # outputs of readable inputs that pass every check
    for index, feed, key in outputs:
        if index in readable:
            verdict = feedcheck_verdict(checks[key], {name: by_body[name][key] for name in chosen})
            failures += [(str(files[index].relative_to(CORPUS)), feed, line) for line in verdict]
            passing += not verdict

    figures = _figures(inputs, by_body, outputs, readable, passing, len(bodies))
    if os.environ.get("ICALPROXY_CORPUS_REPORT"):  # every failure, one per line, for whoever fixes them
        Path(os.environ["ICALPROXY_CORPUS_REPORT"]).write_text(
            "".join(f"{name}\t{feed}\t{line}\n" for name, feed, line in failures), encoding="utf-8"
        )
    with capsys.disabled():
        print(f"\n{figures}\n  took {time.monotonic() - started:.0f}s")

    # A harness that rejected everything would make the assertion below vacuous.
    for name in PARSERS:
        assert accepted(inputs[name]) > len(files) * 0.7, f"{name} accepts too few inputs:\n{figures}"
    assert failures == [], _summary(failures)


def _figures(
    inputs: dict[str, list[Result]],
    by_body: dict[str, dict[str, Result]],
    outputs: list[tuple[int, str, str]],
    readable: set[int],
    passing: int,
    distinct: int,
) -> str:
    total = len(next(iter(inputs.values())))
    lines = [
        f"corpus through ical.js, icalendar and libical (window {WINDOW_FROM} + {WINDOW_YEARS} years): "
        f"{total} inputs, {len(outputs)} outputs ({distinct} distinct)"
    ]
    for name, results in inputs.items():
        own = [key for index, _, key in outputs if results[index]["ok"]]
        every = sum(1 for _, _, key in outputs if by_body[name][key]["ok"])
        mine = sum(1 for key in own if by_body[name][key]["ok"])
        lines.append(
            f"  {name:9}  inputs accepted {accepted(results)}/{total}; outputs accepted "
            f"{every}/{len(outputs)}, of the inputs it accepts {mine}/{len(own)}"
        )
    of_readable = sum(1 for index, _, _ in outputs if index in readable)
    lines.append(
        f"  feedcheck  inputs some parser accepts {len(readable)}/{total}; their outputs that pass every "
        f"check {passing}/{of_readable}"
    )
    return "\n".join(lines)


def _summary(failures: list[tuple[str, str, str]]) -> str:
    """Failures grouped by check and message (numbers, UIDs and quoted values masked)."""
    causes: Counter[str] = Counter()
    example: dict[str, str] = {}
    for name, feed, line in failures:
        cause = re.sub(r"\d+", "N", re.sub(r"(UID|uid:)\s?\S+|\"[^\"]*\"|'[^']*'", r"\1…", line))[:160]
        causes[cause] += 1
        example.setdefault(cause, f"{name} [{feed}]")
    lines = [f"{len(failures)} feedcheck failures on outputs of readable inputs, by cause:"]
    lines += [f"{count:6}  {cause}\n        e.g. {example[cause]}" for cause, count in causes.most_common()]
    return "\n".join(lines)
