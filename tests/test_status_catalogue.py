"""Client-facing status like a client portal: hidden by default, each internal stage mapped
to a client status or to nothing, unmapped stages carry over what the client saw, per-job
overrides. Pulls are simulated by rendering again with the previous run's status history."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from icalproxy.core.pipeline import parse_sources, render_feeds
from icalproxy.core.status import CARRIED, DEFAULT, HIDDEN, MAPPED, OVERRIDDEN
from tests.support import calendar, rules_from

RULES = rules_from(
    """
sources: {s: {url: s.ics}}
statuses:
  field: Status
  default: hidden
  overrides: {name: Client title, description: Client note, visible: Show to client}
  values:
    Scheduled: {label: Scheduled, description: "We will arrive in the booked window."}
    Parts ordered: {keep: true}
    In progress: {label: In progress, description: "Our technician is working on it."}
    Internal review: {show: false}
    Done: {label: Completed}
profiles:
  portal: {extends: client, description: "[{status}][ since {status_since}][\\n{status_description}]"}
feeds: {c: {title: C, profile: portal}}
"""
)
START = datetime(2026, 11, 1, 8)


def _job(stage: str | None, extra: str = "") -> bytes:
    status = f"\nX-TEAMUP-STATUS:{stage}" if stage else ""
    return calendar(f"UID:j\nDTSTART:20261201T080000Z\nSUMMARY:Boiler{status}{extra}")


def _pulls(stages: list[tuple[str | None, str]]) -> list[tuple[str, object]]:
    """Render once per stage, a day apart, each time with the previous history."""
    history: dict = {}
    shown = []
    for day, (stage, extra) in enumerate(stages):
        result = render_feeds(
            parse_sources({"s": _job(stage, extra)}), RULES, START + timedelta(days=day), statuses=history
        )
        history = {**history, **result.statuses}
        text = result.feeds["c"].body.decode().replace("\r\n ", "")
        event = text[text.index("BEGIN:VEVENT") :]
        summary = event.split("SUMMARY:")[1].split("\r\n")[0]
        description = event.split("DESCRIPTION:")[1].split("\r\n")[0] if "DESCRIPTION:" in event else ""
        record = result.statuses[("s", "j", "")]
        shown.append((summary, description, record.reason))
    return shown  # type: ignore[return-value]


def test_a_pipeline_of_stages_as_the_client_sees_it() -> None:
    seen = _pulls(
        [
            (None, ""),  # a new job: hidden by default
            ("Parts ordered", ""),  # keep: still nothing shown
            ("Scheduled", ""),
            ("Parts ordered", ""),  # carry-over: Scheduled stays, with its date
            ("Unknown stage", ""),  # unlisted (default keep): carry-over
            ("In progress", ""),
            ("Internal review", ""),  # show: false hides it
            ("Parts ordered", ""),  # carry-over of "hidden": still nothing
            ("Done", ""),  # shown again
        ]
    )
    since_scheduled = "since 2026-11-03"
    assert seen == [
        ("Boiler", "", DEFAULT),
        ("Boiler", "", DEFAULT),
        ("Boiler — Scheduled", f"Scheduled {since_scheduled}\\nWe will arrive in the booked window.", MAPPED),
        (
            "Boiler — Scheduled",
            f"Scheduled {since_scheduled}\\nWe will arrive in the booked window.",
            CARRIED,
        ),
        (
            "Boiler — Scheduled",
            f"Scheduled {since_scheduled}\\nWe will arrive in the booked window.",
            CARRIED,
        ),
        ("Boiler — In progress", "In progress since 2026-11-06\\nOur technician is working on it.", MAPPED),
        ("Boiler", "", HIDDEN),
        ("Boiler", "", DEFAULT),
        ("Boiler — Completed", "Completed since 2026-11-09", MAPPED),
    ]


@pytest.mark.parametrize(
    ("extra", "summary", "description", "reason"),
    [
        ("\nX-TEAMUP-SHOW-TO-CLIENT:no", "Boiler", "", OVERRIDDEN),
        (
            "\nX-TEAMUP-CLIENT-NOTE:Parts arrive Monday",
            "Boiler — Scheduled",
            "Parts arrive Monday",
            OVERRIDDEN,
        ),
        (
            "\nX-TEAMUP-CLIENT-TITLE:Heating check https://SECRET.example",
            "Heating check — Scheduled",
            "",
            MAPPED,
        ),
    ],
)
def test_per_job_overrides(extra: str, summary: str, description: str, reason: str) -> None:
    ((shown_summary, shown_description, shown_reason),) = _pulls([("Scheduled", extra)])
    assert shown_summary == summary and shown_reason == reason
    assert description in shown_description
    assert "SECRET" not in shown_summary


# ---------------------------------------------------------------- the daemon keeps the history


def test_carry_over_survives_restarts_and_kill_9(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import signal

    from tests.harness import Daemon, Upstream, create_token, http, run_cli, wait_until

    catalogue = (
        "statuses:\n  field: Status\n  values:\n    Scheduled: {label: Scheduled}\n"
        "    Parts ordered: {keep: true}\n    In progress: {label: In progress}\n"
    )
    upstream = Upstream().start()
    started: list[Daemon] = []
    try:
        upstream.state.set_body(_job("Scheduled"))
        (tmp_path / "rules").mkdir()
        (tmp_path / "rules" / "feeds.yaml").write_text("feeds: {c: {title: C}}\n" + catalogue)
        config = tmp_path / "config.yaml"
        config.write_text(
            f"state_dir: state\nrules: rules\nsources:\n  s: {{url: '{upstream.url}', every: 1h}}\n"
        )
        token = create_token(config, "c")
        daemon = Daemon(config, tmp_path).start()
        started.append(daemon)

        def summary() -> str:
            body = http(f"{daemon.base}/feed/{token}.ics")[2].decode()
            return body.split("SUMMARY:")[1].split("\r\n")[0]

        assert summary() == "Boiler — Scheduled"
        daemon.stop()

        def rendered_after(requests: int) -> bool:  # the restarted daemon pulled and rendered
            return upstream.state.requests > requests and any(
                event.get("event") == "feeds_rendered" for event in daemon.events()
            )

        upstream.state.set_body(_job("Parts ordered"))  # keep: carry-over after a restart
        pulled = upstream.state.requests
        daemon = Daemon(config, tmp_path).start()
        started.append(daemon)
        wait_until(lambda: rendered_after(pulled), what="a render after the restart")
        assert summary() == "Boiler — Scheduled"
        assert "carried over" in run_cli(config, "status", "--feed", "c")
        upstream.state.set_body(_job("In progress"))
        daemon.pull_now()
        wait_until(lambda: summary() == "Boiler — In progress", what="new status")
        daemon.stop(signal.SIGKILL)  # the history was written with the feed version
        upstream.state.set_body(_job("Parts ordered"))
        pulled = upstream.state.requests
        daemon = Daemon(config, tmp_path).start()
        started.append(daemon)
        wait_until(lambda: rendered_after(pulled), what="a render after kill -9")
        assert summary() == "Boiler — In progress"
        daemon.stop()
    finally:
        for each in started:  # a failed check never leaves a daemon behind
            if each.process is not None and each.process.poll() is None:
                each.stop()
        upstream.stop()
