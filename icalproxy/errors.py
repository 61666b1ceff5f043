"""One exception tree for icalproxy. Foreign errors are mapped at the boundary (``raise … from``).

IcalproxyError
├── ConfigError        every problem of a config/rules set, each "file:line: message"
├── FetchError         a source could not be pulled (source name and reason attached)
│   └── NotCalendarError   a body came back but it is not iCalendar (HTML, empty…)
├── StateError         state on disk unreadable or unwritable
├── PushError          a CalDAV push target refused or could not be reached (target, status)
├── ListenError        the daemon cannot listen where it was told (port in use, unknown host)
└── TokenError         unknown feed or token id in token management
"""

from __future__ import annotations


class IcalproxyError(Exception):
    """Root of every error icalproxy raises on purpose."""


class ConfigError(IcalproxyError):
    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class FetchError(IcalproxyError):
    def __init__(self, source: str, reason: str, *, status: int | None = None) -> None:
        self.source = source
        self.reason = reason
        self.status = status
        super().__init__(f"{source}: {reason}")


class NotCalendarError(FetchError):
    pass


class StateError(IcalproxyError):
    pass


class ListenError(IcalproxyError):
    pass


class TokenError(IcalproxyError):
    pass


class PushError(IcalproxyError):
    """Named by the target (feed#index and its URL without credentials), never a secret."""

    def __init__(self, target: str, reason: str, *, status: int | None = None) -> None:
        self.target = target
        self.reason = reason
        self.status = status
        super().__init__(f"{target}: {reason}")
