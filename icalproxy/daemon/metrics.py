"""Prometheus text exposition of the daemon's counters and gauges (no client library needed)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(slots=True)
class Summary:
    count: int = 0
    total: float = 0.0

    def observe(self, value: float) -> None:
        self.count += 1
        self.total += value


@dataclass(slots=True)
class Metrics:
    fetches: Counter[tuple[str, str]] = field(default_factory=Counter)
    fetch_seconds: Summary = field(default_factory=Summary)
    render_seconds: Summary = field(default_factory=Summary)
    feed_events: dict[str, int] = field(default_factory=dict)
    feed_bytes: dict[str, int] = field(default_factory=dict)
    feed_unmatched: dict[str, int] = field(default_factory=dict)
    requests: Counter[tuple[str, int]] = field(default_factory=Counter)
    reloads: Counter[str] = field(default_factory=Counter)
    reload_ok: int = 1
    # CalDAV push (daemon/push.py), by target name ("feed#index", never credentials)
    push_requests: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    push_pending: dict[str, int] = field(default_factory=dict)
    push_last_success: dict[str, float] = field(default_factory=dict)
    push_drift: Counter[str] = field(default_factory=Counter)
    conflicts: dict[tuple[str, str], int] = field(default_factory=dict)  # (feed, kind) → count
    alerts: Counter[str] = field(default_factory=Counter)  # webhook attempts by result

    def fetch(self, source: str, result: str, seconds: float) -> None:
        self.fetches[(source, result)] += 1
        if seconds:
            self.fetch_seconds.observe(seconds)

    def render(self, gauges: dict[str, dict[str, float]]) -> str:
        lines: list[str] = []

        def family(name: str, kind: str, text: str) -> None:
            lines.append(f"# HELP {name} {text}")
            lines.append(f"# TYPE {name} {kind}")

        family("icalproxy_fetches_total", "counter", "Source pulls by result.")
        for (source, result), count in sorted(self.fetches.items()):
            lines.append(f'icalproxy_fetches_total{{source="{_esc(source)}",result="{result}"}} {count}')
        family(
            "icalproxy_source_last_success_timestamp_seconds",
            "gauge",
            "When a pull of the source last ended well (200 accepted or 304).",
        )
        for source, value in sorted(gauges.get("last_success", {}).items()):
            lines.append(
                f'icalproxy_source_last_success_timestamp_seconds{{source="{_esc(source)}"}} {value:.3f}'
            )
        family("icalproxy_source_events", "gauge", "VEVENTs in the source's last good version.")
        for source, value in sorted(gauges.get("source_events", {}).items()):
            lines.append(f'icalproxy_source_events{{source="{_esc(source)}"}} {value:.0f}')
        family(
            "icalproxy_source_shrink_held",
            "gauge",
            "1 while the shrink guard holds a source's last good version.",
        )
        for source, value in sorted(gauges.get("shrink_held", {}).items()):
            lines.append(f'icalproxy_source_shrink_held{{source="{_esc(source)}"}} {value:.0f}')
        family("icalproxy_feed_events", "gauge", "VEVENTs in the served feed.")
        for feed, value in sorted(self.feed_events.items()):
            lines.append(f'icalproxy_feed_events{{feed="{_esc(feed)}"}} {value}')
        family("icalproxy_feed_bytes", "gauge", "Size of the served feed (Google gives up above about 1 MB).")
        for feed, value in sorted(self.feed_bytes.items()):
            lines.append(f'icalproxy_feed_bytes{{feed="{_esc(feed)}"}} {value}')
        family(
            "icalproxy_feed_unmatched_rules",
            "gauge",
            "Rule values of the feed that appear in no source (+1 when its rules match nothing at all).",
        )
        for feed, value in sorted(self.feed_unmatched.items()):
            lines.append(f'icalproxy_feed_unmatched_rules{{feed="{_esc(feed)}"}} {value}')
        family(
            "icalproxy_feed_emptying_held",
            "gauge",
            "1 while a feed keeps its last version because a render would have emptied it.",
        )
        for feed, value in sorted(gauges.get("feed_held", {}).items()):
            lines.append(f'icalproxy_feed_emptying_held{{feed="{_esc(feed)}"}} {value:.0f}')
        for name, summary, text in (
            ("icalproxy_fetch_seconds", self.fetch_seconds, "Time to pull a source."),
            ("icalproxy_render_seconds", self.render_seconds, "Time to render the feeds of a change."),
        ):
            family(name, "summary", text)
            lines.append(f"{name}_sum {summary.total:.6f}")
            lines.append(f"{name}_count {summary.count}")
        family("icalproxy_http_requests_total", "counter", "HTTP requests by route and status.")
        for (route, status), count in sorted(self.requests.items()):
            lines.append(f'icalproxy_http_requests_total{{route="{route}",status="{status}"}} {count}')
        family("icalproxy_config_reloads_total", "counter", "Config reloads by result.")
        for result, count in sorted(self.reloads.items()):
            lines.append(f'icalproxy_config_reloads_total{{result="{result}"}} {count}')
        family("icalproxy_config_last_reload_ok", "gauge", "1 when the last config reload was applied.")
        lines.append(f"icalproxy_config_last_reload_ok {self.reload_ok}")
        self._render_push(lines, family)
        family("icalproxy_conflicts", "gauge", "Conflicts in a feed's window by kind (overlap, travel, …).")
        for (feed, kind), count in sorted(self.conflicts.items()):
            lines.append(f'icalproxy_conflicts{{feed="{_esc(feed)}",kind="{kind}"}} {count}')
        family("icalproxy_alerts_total", "counter", "Webhook alert attempts by result.")
        for result, count in sorted(self.alerts.items()):
            lines.append(f'icalproxy_alerts_total{{result="{result}"}} {count}')
        return "\n".join(lines) + "\n"

    def _render_push(self, lines: list[str], family: Callable[[str, str, str], None]) -> None:
        family("icalproxy_push_requests_total", "counter", "CalDAV push requests by target, method, status.")
        for (target, method, status), count in sorted(self.push_requests.items()):
            lines.append(
                f'icalproxy_push_requests_total{{target="{_esc(target)}",method="{method}",'
                f'status="{status}"}} {count}'
            )
        family("icalproxy_push_pending", "gauge", "Changes of a push target not yet on its server.")
        for target, value in sorted(self.push_pending.items()):
            lines.append(f'icalproxy_push_pending{{target="{_esc(target)}"}} {value}')
        family(
            "icalproxy_push_last_success_timestamp_seconds", "gauge", "When a push target last synced fully."
        )
        for target, moment in sorted(self.push_last_success.items()):
            lines.append(
                f'icalproxy_push_last_success_timestamp_seconds{{target="{_esc(target)}"}} {moment:.3f}'
            )
        family("icalproxy_push_drift_restored_total", "counter", "Resources edited or deleted on the server.")
        for target, count in sorted(self.push_drift.items()):
            lines.append(f'icalproxy_push_drift_restored_total{{target="{_esc(target)}"}} {count}')


def _esc(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
