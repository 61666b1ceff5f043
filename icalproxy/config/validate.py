"""Located YAML documents → frozen Config, or ConfigError listing every ``file:line: problem``.

Strict on purpose: unknown keys, wrong types, unknown sources or profiles, bad regexes and
bad templates are all errors, because a typo must never silently switch a redaction off.
"""

from __future__ import annotations

import fnmatch
import re
import zoneinfo
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from icalproxy.config.builtin import BUILTIN_PROFILES
from icalproxy.config.load import Located
from icalproxy.config.model import (
    WEEKDAYS,
    Alerts,
    AllOf,
    AnyOf,
    CalDAVTarget,
    Condition,
    Config,
    ConflictRules,
    CustomFields,
    Feed,
    FieldMatch,
    Not,
    Profile,
    Publish,
    Rules,
    Scrub,
    Server,
    ShrinkGuard,
    Source,
    SourceMatch,
    StatusCatalogue,
    StatusEntry,
    StatusOverrides,
    Subcalendar,
    SummaryMatch,
    Webhook,
    Who,
    Window,
)
from icalproxy.config.regex_guard import backtracking_risk
from icalproxy.core.scrub import Scrubber
from icalproxy.core.template import TemplateError, compile_template
from icalproxy.errors import ConfigError
from icalproxy.records import field_names

FEED_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")
_DURATION = re.compile(r"(?:(\d+)d)?\s*(?:(\d+)h)?\s*(?:(\d+)m)?\s*(?:(\d+)s)?\Z")
_ISO_DURATION = re.compile(r"P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?\Z")
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*(B|KB|KIB|MB|MIB|GB|GIB)?\Z", re.IGNORECASE)
_SIZE_UNITS = {
    "B": 1,
    "KB": 1000,
    "KIB": 1024,
    "MB": 10**6,
    "MIB": 2**20,
    "GB": 10**9,
    "GIB": 2**30,
}
MAX_REGEX_LENGTH = 500
MIN_OPS_TOKEN = 16  # e.g. `python3 -c 'import secrets; print(secrets.token_urlsafe(32))'`

CONFIG_KEYS = {
    "sources",
    "state_dir",
    "store",
    "rules",
    "server",
    *("feeds", "profiles", "statuses"),
    "custom_fields",
    "publish",
    "alerts",
}
RULES_KEYS = {"feeds", "profiles", "statuses", "custom_fields", "publish"}


class _Checker:
    """Collects problems; each helper returns a value or None after recording a problem."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        self.warnings: list[str] = []

    def fail(self, where: Located, message: str) -> None:
        self.problems.append(f"{where.where}: {message}")

    def warn(self, where: Located, message: str) -> None:
        self.warnings.append(f"{where.where}: {message}")

    def mapping(
        self, node: Located, what: str, allowed: set[str], required: tuple[str, ...] = ()
    ) -> dict[str, Located] | None:
        if not isinstance(node.value, dict):
            self.fail(node, f"{what} must be a mapping")
            return None
        for key, value in node.value.items():
            if key not in allowed:
                known = ", ".join(sorted(allowed))
                self.fail(value, f"unknown key {key!r} in {what} (known: {known})")
        for key in required:
            if key not in node.value:
                self.fail(node, f"{what} needs {key!r}")
        return dict(node.value)

    def string(self, node: Located, what: str, *, empty: bool = False) -> str | None:
        if isinstance(node.value, bool) or not isinstance(node.value, (str, int, float)):
            self.fail(node, f"{what} must be text")
            return None
        text = str(node.value)
        if not empty and not text.strip():
            self.fail(node, f"{what} must not be empty")
            return None
        return text

    def strings(self, node: Located, what: str) -> list[str] | None:
        items = node.value if isinstance(node.value, list) else [node]
        if not items:
            self.fail(node, f"{what} must not be an empty list")
            return None
        found = [self.string(item, what) for item in items]
        return None if any(value is None for value in found) else [v for v in found if v is not None]

    def boolean(self, node: Located, what: str) -> bool | None:
        if not isinstance(node.value, bool):
            self.fail(node, f"{what} must be true or false")
            return None
        return node.value

    def number(self, node: Located, what: str, low: float, high: float) -> float | None:
        value = node.value
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
            self.fail(node, f"{what} must be a number from {low:g} to {high:g}")
            return None
        return float(value)

    def choice(self, node: Located, what: str, options: tuple[str, ...]) -> str | None:
        if node.value not in options:
            self.fail(node, f"{what} must be one of {', '.join(options)}")
            return None
        return str(node.value)

    def duration(self, node: Located, what: str) -> timedelta | None:
        value = node.value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            # `past: 30` meant 30 days to the one who wrote it, 30 seconds to the program.
            self.fail(
                node,
                f"{what}: {value:g} needs a unit, such as {value:g}d, {value:g}h, {value:g}m or {value:g}s",
            )
            return None
        if isinstance(value, str) and value.strip().isdigit():
            self.fail(
                node, f"{what}: {value.strip()!r} needs a unit, such as {value.strip()}d or {value.strip()}m"
            )
            return None
        text = str(value).strip().lower() if isinstance(value, str) else ""
        match = _DURATION.match(text) if text else None
        iso = _ISO_DURATION.match(text.upper()) if text else None
        groups = match.groups() if match and any(match.groups()) else None
        if groups is None and iso and any(iso.groups()):
            groups = iso.groups()
        if groups is None:
            self.fail(node, f"{what} must be a duration such as 15m, 1h30m, 2d or PT15M")
            return None
        days, hours, minutes, seconds = (int(part or 0) for part in groups)
        delta = timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
        if delta <= timedelta():
            self.fail(node, f"{what} must be longer than zero")
            return None
        return delta

    def size(self, node: Located, what: str) -> int | None:
        value = node.value
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
        match = _SIZE.match(str(value).strip()) if isinstance(value, str) else None
        if not match:
            self.fail(node, f"{what} must be a size such as 20MB or 512KiB")
            return None
        return int(float(match[1]) * _SIZE_UNITS[(match[2] or "B").upper()])

    def regex(self, node: Located, what: str) -> re.Pattern[str] | None:
        text = self.string(node, what)
        if text is None:
            return None
        if len(text) > MAX_REGEX_LENGTH:
            self.fail(node, f"{what} is longer than {MAX_REGEX_LENGTH} characters")
            return None
        try:
            compiled = re.compile(text)
        except re.error as exc:
            self.fail(node, f"{what} is not a valid regular expression: {exc}")
            return None
        risk = backtracking_risk(text)
        if risk is not None:
            self.fail(node, f"{what} {text!r} {risk}")
            return None
        return compiled

    def template(self, node: Located, what: str) -> str | None:
        text = self.string(node, what, empty=True)
        if text is None:
            return None
        try:
            compile_template(text)
        except TemplateError as exc:
            self.fail(node, f"{what}: {exc}")
            return None
        return text


def validate(
    document: Located,
    rules_documents: list[Located],
    config_path: Path,
    watched: tuple[Path, ...] = (),
    rules_dir: Path | None = None,
) -> Config:
    check = _Checker()
    base = config_path.parent
    top = check.mapping(document, "the config file", CONFIG_KEYS) or {}
    merged: dict[str, list[tuple[str, Located]]] = {}
    for key in RULES_KEYS:
        if key in top:
            merged.setdefault(key, []).append((key, top[key]))
    for rules_doc in rules_documents:
        section = check.mapping(rules_doc, "a rules file", RULES_KEYS) or {}
        for key, value in section.items():
            if key in RULES_KEYS:
                merged.setdefault(key, []).append((key, value))

    sources = _sources(check, top.get("sources"), base, document)
    custom = _custom_fields(check, _single(check, merged, "custom_fields"))
    publish = _publish(check, _single(check, merged, "publish"))
    statuses = _statuses(check, _single(check, merged, "statuses"))
    profiles = _profiles(check, _named_sections(check, merged, "profiles", "profile"))
    feeds = _feeds(check, _named_sections(check, merged, "feeds", "feed"), sources, profiles)
    if not feeds and not check.problems:
        check.fail(document, "no feeds defined (add a 'feeds:' section here or in a rules file)")
    server = _server(check, top.get("server"))
    alerts = _alerts(check, top.get("alerts"))
    state_dir = base / "state"
    if "state_dir" in top:
        text = check.string(top["state_dir"], "state_dir")
        if text is not None:
            state_dir = (base / text).resolve()
    store = _store(check, top.get("store"))
    if check.problems:
        raise ConfigError(check.problems)
    rules = Rules(
        feeds=feeds,
        profiles=profiles,
        statuses=statuses,
        custom_fields=custom,
        publish=publish,
        warnings=tuple(check.warnings),
    )
    return Config(
        path=config_path,
        sources=sources,
        rules=rules,
        state_dir=state_dir,
        server=server,
        store=store,
        watched_files=watched,
        rules_dir=rules_dir,
        alerts=alerts,
    )


def _store(check: _Checker, node: Located | None) -> str:
    """``sqlite`` (default: ``state_dir/icalproxy.db``) or a ``postgresql://`` URL."""
    if node is None:
        return "sqlite"
    text = check.string(node, "store")
    if text is None:
        return "sqlite"
    if text != "sqlite" and not text.startswith(("postgresql://", "postgres://")):
        check.fail(node, "store: expected 'sqlite' or a postgresql://user:password@host:port/db URL")
    return text


def _single(check: _Checker, merged: dict[str, list[tuple[str, Located]]], key: str) -> Located | None:
    found = merged.get(key, [])
    for _, extra in found[1:]:
        check.fail(extra, f"{key!r} is defined again (first at {found[0][1].where})")
    return found[0][1] if found else None


def _named_sections(
    check: _Checker, merged: dict[str, list[tuple[str, Located]]], key: str, what: str
) -> dict[str, Located]:
    result: dict[str, Located] = {}
    for _, section in merged.get(key, []):
        if not isinstance(section.value, dict):
            check.fail(section, f"{key} must be a mapping of names to {what} definitions")
            continue
        for name, body in section.value.items():
            if name in result:
                check.fail(body, f"{what} {name!r} is defined twice (first at {result[name].where})")
                continue
            result[name] = body
    return result


def _sources(check: _Checker, node: Located | None, base: Path, document: Located) -> dict[str, Source]:
    if node is None:
        check.fail(document, "the config needs a 'sources:' section")
        return {}
    entries = check.mapping(node, "sources", set(node.value) if isinstance(node.value, dict) else set())
    result: dict[str, Source] = {}
    for name, body in (entries or {}).items():
        fields = check.mapping(
            body,
            f"source {name!r}",
            {
                "url",
                "every",
                "timeout",
                "connect_timeout",
                "max_bytes",
                "retries",
                "headers",
                "shrink_guard",
            },
            required=("url",),
        )
        if fields is None or "url" not in fields:
            continue
        url = check.string(fields["url"], f"source {name!r} url")
        if url is None:
            continue
        if url.startswith("file://"):
            url = url[len("file://") :]
        if url.startswith(("http://", "https://")):
            host_problem = _host_problem(url)
            if host_problem is not None:
                check.fail(fields["url"], f"source {name!r} url: {host_problem}")
                continue
        else:
            if "://" in url:
                check.fail(fields["url"], f"source {name!r} url must be http(s) or a file path")
                continue
            url = str((base / url).resolve())
        options: dict[str, Any] = {}
        _optional(fields, "every", options, lambda n: check.duration(n, "every"))
        _optional(fields, "timeout", options, lambda n: check.number(n, "timeout", 0.1, 600))
        _optional(
            fields,
            "connect_timeout",
            options,
            lambda n: check.number(n, "connect_timeout", 0.1, 120),
        )
        _optional(fields, "max_bytes", options, lambda n: check.size(n, "max_bytes"))
        _optional(fields, "retries", options, lambda n: _int(check.number(n, "retries", 0, 10)))
        if "headers" in fields:
            headers = check.mapping(
                fields["headers"],
                "headers",
                set(fields["headers"].value or {}) if isinstance(fields["headers"].value, dict) else set(),
            )
            if headers is not None:
                options["headers"] = {
                    key: check.string(value, f"header {key}") or "" for key, value in headers.items()
                }
        if "shrink_guard" in fields:
            guard = check.mapping(fields["shrink_guard"], "shrink_guard", {"max_loss", "confirm_pulls"})
            if guard is not None:
                guard_options: dict[str, Any] = {}
                _optional(
                    guard,
                    "max_loss",
                    guard_options,
                    lambda n: check.number(n, "max_loss", 0.0, 1.0),
                )
                _optional(
                    guard,
                    "confirm_pulls",
                    guard_options,
                    lambda n: _int(check.number(n, "confirm_pulls", 1, 1000)),
                )
                options["shrink_guard"] = ShrinkGuard(**guard_options)
        if "every" in options and options["every"] < timedelta(seconds=10):
            check.fail(fields["every"], "every must be at least 10s (be polite to the upstream)")
        written = "" if url.startswith(("http://", "https://")) else str(fields["url"].value)
        result[name] = Source(name=name, url=url, where=fields["url"].where, written=written, **options)
    return result


def _host_problem(url: str) -> str | None:
    """Why the host of an http(s) URL can never be looked up, or None. Never quotes the URL."""
    try:
        host = urlsplit(url).hostname
    except ValueError as exc:
        return f"not a valid URL ({exc})"
    if not host:
        return "has no host"
    try:
        host.encode("idna")
    except UnicodeError as exc:
        reason = str(exc).rsplit("UnicodeError: ", 1)[-1].rstrip(")")
        return f"host {host!r} is not a valid internationalised domain name ({reason})"
    return None


def _int(value: float | None) -> int | None:
    return None if value is None else int(value)


def _optional(
    fields: dict[str, Located], key: str, out: dict[str, Any], convert: Callable[[Located], Any]
) -> None:
    if key in fields:
        value = convert(fields[key])
        if value is not None:
            out[key] = value


def _custom_fields(check: _Checker, node: Located | None) -> CustomFields:
    if node is None:
        return CustomFields()
    fields = check.mapping(node, "custom_fields", {"prefix", "description_lines"}) or {}
    options: dict[str, Any] = {}
    _optional(fields, "prefix", options, lambda n: (check.string(n, "prefix") or "").upper() or None)
    _optional(fields, "description_lines", options, lambda n: check.boolean(n, "description_lines"))
    return CustomFields(**options)


def _publish(check: _Checker, node: Located | None) -> Publish:
    if node is None:
        return Publish()
    fields = check.mapping(node, "publish", {"refresh_interval"}) or {}
    options: dict[str, Any] = {}
    _optional(fields, "refresh_interval", options, lambda n: check.duration(n, "refresh_interval"))
    return Publish(**options)


def _statuses(check: _Checker, node: Located | None) -> StatusCatalogue:
    if node is None:
        return StatusCatalogue()
    fields = check.mapping(
        node,
        "statuses",
        {"field", "unlisted", "values", "default", "overrides", "keep_history"},
        required=("values",),
    )
    if fields is None:
        return StatusCatalogue()
    options: dict[str, Any] = {"defined": True}
    _optional(fields, "field", options, lambda n: check.string(n, "statuses field"))
    _optional(fields, "unlisted", options, lambda n: check.choice(n, "unlisted", ("hide", "show", "keep")))
    _optional(fields, "default", options, lambda n: check.choice(n, "default", ("hidden", "shown")))
    _optional(fields, "keep_history", options, lambda n: check.duration(n, "keep_history"))
    if "overrides" in fields:
        names = check.mapping(fields["overrides"], "statuses overrides", {"name", "description", "visible"})
        if names is not None:
            found = {key: check.string(item, f"overrides {key}") for key, item in names.items()}
            options["overrides"] = StatusOverrides(**{k: v for k, v in found.items() if v})
    entries: dict[str, StatusEntry] = {}
    values_node = fields.get("values")
    if values_node is not None:
        if not isinstance(values_node.value, dict):
            check.fail(values_node, "statuses values must map internal values to what clients see")
        else:
            for value, body in values_node.value.items():
                entry = _status_entry(check, value, body)
                if entry is not None:
                    if value.casefold() in entries:
                        check.fail(body, f"status {value!r} is listed twice (case does not count)")
                    entries[value.casefold()] = entry
    options["entries"] = entries
    return StatusCatalogue(**options)


# The client profile's scrubber: catalogue texts go through it like every text a client sees.
_CLIENT_SCRUB = Scrubber.of(BUILTIN_PROFILES["client"].scrub)


def _status_entry(check: _Checker, value: str, body: Located) -> StatusEntry | None:
    if isinstance(body.value, str):
        return StatusEntry(value=value, label=body.value)
    if body.value is None:
        return StatusEntry(value=value, label=value)
    keys = {"label", "description", "show", "calendar_status", "keep"}
    fields = check.mapping(body, f"status {value!r}", keys)
    if fields is None:
        return None
    label = check.string(fields["label"], "label") if "label" in fields else value
    description = (
        check.string(fields["description"], "description", empty=True) if "description" in fields else ""
    )
    show = check.boolean(fields["show"], "show") if "show" in fields else True
    keep = check.boolean(fields["keep"], "keep") if "keep" in fields else False
    calendar_status = None
    if "calendar_status" in fields:
        calendar_status = check.choice(
            fields["calendar_status"], "calendar_status", ("CANCELLED", "TENTATIVE", "CONFIRMED")
        )
        if calendar_status is None:
            return None
    if label is None or description is None or show is None or keep is None:
        return None
    for key, text in (("label", label), ("description", description)):
        if text and _CLIENT_SCRUB.scrub(text) != text.strip():
            where = fields.get(key, body)
            message = f"status {value!r}: the {key} holds a link or e-mail address; clients see it removed"
            check.warn(where, message)
    return StatusEntry(
        value=value,
        label=label,
        description=description,
        show=show,
        calendar_status=calendar_status,
        keep=keep,
    )


_PROFILE_KEYS = {
    "extends",
    "summary",
    "description",
    "location",
    "keep",
    "categories",
    "client_facing",
    "scrub",
    "drop_description_lines",
    "show_status",
    "private_events",
    "busy_summary",
    "details",
}


def _profiles(check: _Checker, nodes: dict[str, Located]) -> dict[str, Profile]:
    profiles = dict(BUILTIN_PROFILES)
    pending = dict(nodes)
    for _ in range(len(pending) + 1):  # resolve `extends` in dependency order
        progressed = False
        for name, node in list(pending.items()):
            parent_name = "client"
            if isinstance(node.value, dict) and "extends" in node.value:
                parent_name = str(node.value["extends"].value)
            if parent_name in pending and parent_name != name:
                continue
            del pending[name]
            progressed = True
            parent = profiles.get(parent_name)
            if parent is None:
                check.fail(
                    node.value["extends"],
                    f"profile {name!r} extends unknown profile {parent_name!r}",
                )
                continue
            profile = _profile(check, name, node, parent)
            if profile is not None:
                profiles[name] = profile
        if not pending or not progressed:
            break
    for name, node in pending.items():
        check.fail(node, f"profile {name!r} extends itself through a cycle")
    return profiles


def _profile(check: _Checker, name: str, node: Located, parent: Profile) -> Profile | None:
    fields = check.mapping(node, f"profile {name!r}", _PROFILE_KEYS)
    if fields is None:
        return None
    options: dict[str, Any] = {"name": name}
    for key in ("summary", "busy_summary"):
        if key in fields:
            options[key] = check.template(fields[key], key)
            if options[key] is None:
                del options[key]
    for key in ("description", "location"):
        if key in fields:
            options[key] = None if fields[key].value is None else check.template(fields[key], key)
    if "keep" in fields:
        names = check.strings(fields["keep"], "keep")
        if names is not None:
            from icalproxy.core.redact import NEVER_KEEP  # noqa: PLC0415

            upper = {item.upper() for item in names}
            for forbidden in sorted(upper & NEVER_KEEP):
                check.fail(fields["keep"], f"{forbidden} can never be kept: it carries links or people")
            options["keep"] = frozenset(upper - NEVER_KEEP)
    _optional(
        fields,
        "categories",
        options,
        lambda n: check.choice(n, "categories", ("drop", "all", "client-facing")),
    )
    if "client_facing" in fields:
        globs = check.strings(fields["client_facing"], "client_facing")
        if globs is not None:
            options["client_facing"] = tuple(re.compile(fnmatch.translate(glob)) for glob in globs)
    if "scrub" in fields:
        scrub = check.mapping(fields["scrub"], "scrub", {"links", "emails", "phones"})
        if scrub is not None:
            scrub_options: dict[str, Any] = {}
            for key in ("links", "emails", "phones"):
                if key in scrub and (flag := check.boolean(scrub[key], key)) is not None:
                    scrub_options[key] = flag
            options["scrub"] = Scrub(**{**_scrub_dict(parent.scrub), **scrub_options})
    if "drop_description_lines" in fields:
        items = fields["drop_description_lines"]
        lines = items.value if isinstance(items.value, list) else [items]
        patterns = [check.regex(item, "drop_description_lines") for item in lines]
        options["drop_description_lines"] = tuple(p for p in patterns if p is not None)
    _optional(fields, "show_status", options, lambda n: check.boolean(n, "show_status"))
    _optional(
        fields,
        "private_events",
        options,
        lambda n: check.choice(n, "private_events", ("busy", "drop", "show")),
    )
    if "details" in fields:
        names = check.strings(fields["details"], "details")
        if names is not None:
            options["details"] = tuple(dict.fromkeys(name.strip() for name in names if name.strip()))
    merged = {name: getattr(parent, name) for name in field_names(Profile)}
    merged.update(options)
    profile = Profile(**merged)
    for key in ("summary", "description", "location"):
        template = getattr(profile, key)
        if key in fields and template is not None and "{description}" in template:
            check.warn(
                fields[key],
                f"profile {name!r} publishes the free-text job description: notes and costs in it "
                "reach subscribers (list the fields they need in `details` instead)",
            )
    if profile.categories == "client-facing" and not profile.client_facing:
        check.fail(node, f"profile {name!r}: categories client-facing needs client_facing globs")
    return profile


def _scrub_dict(scrub: Scrub) -> dict[str, bool]:
    return {"links": scrub.links, "emails": scrub.emails, "phones": scrub.phones}


_FEED_KEYS = {"title", "from", "where", "profile", "keep_cancelled", "conflicts", "push"}


def _feeds(
    check: _Checker,
    nodes: dict[str, Located],
    sources: dict[str, Source],
    profiles: dict[str, Profile],
) -> dict[str, Feed]:
    feeds: dict[str, Feed] = {}
    for name, node in nodes.items():
        if not FEED_NAME.match(name):
            check.fail(node, f"feed name {name!r} may use only letters, digits, '.', '_' and '-'")
            continue
        fields = check.mapping(node, f"feed {name!r}", _FEED_KEYS | _PAGE_KEYS)
        if fields is None:
            continue
        title = check.string(fields["title"], "title") if "title" in fields else name
        if "from" in fields:
            feed_sources = check.strings(fields["from"], "from")
            for source in feed_sources or ():
                if source not in sources:
                    known = ", ".join(sorted(sources)) or "none"
                    check.fail(
                        fields["from"],
                        f"feed {name!r} reads unknown source {source!r} (known: {known})",
                    )
        else:
            feed_sources = sorted(sources)
        profile = "client"
        if "profile" in fields:
            profile = check.string(fields["profile"], "profile") or "client"
            if profile not in profiles:
                known = ", ".join(sorted(profiles))
                check.fail(
                    fields["profile"],
                    f"feed {name!r} uses unknown profile {profile!r} (known: {known})",
                )
        where = _condition(check, fields["where"], sources) if "where" in fields else None
        push = _push_targets(check, name, fields["push"]) if "push" in fields else ()
        keep_cancelled: timedelta | None = timedelta(days=7)
        if "keep_cancelled" in fields:
            node_keep = fields["keep_cancelled"]
            forever = node_keep.value in (None, "forever")
            keep_cancelled = None if forever else check.duration(node_keep, "keep_cancelled")
        conflicts = _conflicts(check, fields["conflicts"]) if "conflicts" in fields else None
        if title is None or feed_sources is None:
            continue
        feeds[name] = Feed(
            name=name,
            title=title,
            sources=tuple(dict.fromkeys(feed_sources)),
            where=where,
            profile=profile,
            line=node.where,
            **_page_settings(check, name, fields),
            push=push,
            keep_cancelled=keep_cancelled,
            conflicts=conflicts,
        )
    return feeds


_PAGE_KEYS = {"locale", "timezone", "page_past_days"}
PAGE_LOCALES = ("en", "de", "fr")


def _page_settings(check: _Checker, name: str, fields: dict[str, Located]) -> dict[str, Any]:
    """The client page's feed keys: ``locale``, ``timezone`` (IANA) and ``page_past_days``."""
    settings: dict[str, Any] = {}
    if "locale" in fields:
        locale = check.choice(fields["locale"], f"feed {name!r}: locale", PAGE_LOCALES)
        if locale is not None:
            settings["locale"] = locale
    if "timezone" in fields:
        zone = check.string(fields["timezone"], f"feed {name!r}: timezone")
        if zone is not None:
            try:
                zoneinfo.ZoneInfo(zone)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                check.fail(fields["timezone"], f"feed {name!r}: unknown time zone {zone!r} (e.g. UTC)")
            else:
                settings["timezone"] = zone
    if "page_past_days" in fields:
        days = check.number(fields["page_past_days"], f"feed {name!r}: page_past_days", 0, 3650)
        if days is not None:
            settings["page_past_days"] = int(days)
    return settings


_WHERE_KEYS = {"subcalendar", "field", "summary", "source", "window", "all", "any", "not"}
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


def _push_targets(check: _Checker, feed: str, node: Located) -> tuple[CalDAVTarget, ...]:
    """``push: [{caldav: {url, username, password} | {url, bearer_token}}]``."""
    if not isinstance(node.value, list) or not node.value:
        check.fail(node, f"feed {feed!r} push must be a non-empty list of {{caldav: {{url: …}}}} targets")
        return ()
    targets: list[CalDAVTarget] = []
    seen: dict[str, str] = {}
    for item in node.value:
        kinds = check.mapping(item, "a push target", {"caldav"}, required=("caldav",))
        if kinds is None or "caldav" not in kinds:
            continue
        target = _caldav_target(check, kinds["caldav"])
        if target is None:
            continue
        if target.url in seen:
            first = seen[target.url]
            check.fail(kinds["caldav"], f"feed {feed!r} pushes to {target.url} twice (first at {first})")
            continue
        seen[target.url] = target.line
        targets.append(target)
    return tuple(targets)


def _caldav_target(check: _Checker, node: Located) -> CalDAVTarget | None:
    fields = check.mapping(node, "caldav", {"url", "username", "password", "bearer_token"}, required=("url",))
    if fields is None or "url" not in fields:
        return None
    url = check.string(fields["url"], "caldav url")
    secrets = {
        key: check.string(fields[key], f"caldav {key}") if key in fields else None
        for key in ("username", "password", "bearer_token")
    }
    if url is None or any(key in fields and value is None for key, value in secrets.items()):
        return None
    parts = urlsplit(url)
    where = fields["url"]
    if parts.scheme not in ("http", "https") or not parts.hostname:
        check.fail(where, "caldav url must be an http(s) URL of a calendar collection")
        return None
    if parts.username is not None or parts.password is not None:
        check.fail(where, "caldav url must not carry credentials: use username and password")
        return None
    if parts.query or parts.fragment:
        check.fail(where, "caldav url must be a calendar collection, without ?query or #fragment")
        return None
    username, password, token = secrets["username"], secrets["password"], secrets["bearer_token"]
    if token is not None and (username is not None or password is not None):
        check.fail(node, "caldav takes either username and password or bearer_token, not both")
        return None
    if (username is None) != (password is None):
        check.fail(node, "caldav username and password go together")
        return None
    credentials = token is not None or password is not None
    if credentials and parts.scheme == "http" and parts.hostname not in _LOOPBACK:
        check.fail(where, "caldav url must be https: credentials never go over plain http beyond this host")
        return None
    return CalDAVTarget(
        url=url if url.endswith("/") else url + "/",
        username=username,
        password=password,
        bearer_token=token,
        line=node.where,
    )


_CLOCK = re.compile(r"([01]?\d|2[0-4]):([0-5]\d)\Z")


def _conflicts(check: _Checker, node: Located) -> ConflictRules | None:
    """``conflicts: true`` (the defaults) or a mapping of window, all_day, travel_gap, shift."""
    if node.value is True:
        return ConflictRules()
    if node.value is False or node.value is None:
        return None
    keys = {"window", "all_day", "travel_gap", "shift", "timezone"}
    fields = check.mapping(node, "conflicts", keys)
    if fields is None:
        return None
    options: dict[str, Any] = {}
    if "window" in fields:
        window = _window(check, fields["window"])
        if window is not None:
            options.update(
                {key: value for key, value in (("past", window.past), ("future", window.future)) if value}
            )
    _optional(fields, "all_day", options, lambda n: check.choice(n, "all_day", ("ignore", "count")))
    _optional(fields, "travel_gap", options, lambda n: check.duration(n, "travel_gap"))
    if "shift" in fields:
        shift = _shift(check, fields["shift"])
        if shift is not None:
            options["shift"] = shift
    if "timezone" in fields:
        name = check.string(fields["timezone"], "timezone")
        if name is not None:
            import zoneinfo  # noqa: PLC0415

            try:
                zoneinfo.ZoneInfo(name)
                options["timezone"] = name
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                check.fail(fields["timezone"], f"timezone {name!r} is not in the tz database")
    return ConflictRules(**options)


def _shift(check: _Checker, node: Located) -> tuple[tuple[int, int] | None, ...] | None:
    """``{mon-fri: "07:00-17:00", sat: "08:00-12:00"}``: days not named are days off."""
    fields = check.mapping(node, "shift", set(node.value) if isinstance(node.value, dict) else set())
    if not fields:
        if fields is not None:
            check.fail(node, 'shift needs at least one day, e.g. mon-fri: "07:00-17:00"')
        return None
    days: list[tuple[int, int] | None] = [None] * 7
    seen: dict[int, str] = {}
    ok = True
    for key, value in fields.items():
        indexes = _weekdays(str(key))
        if indexes is None:
            check.fail(value, f"shift day {key!r} must be a weekday (mon … sun), a range mon-fri or a list")
            ok = False
            continue
        hours = _hours(value.value)
        if hours is None and value.value not in (None, False, "off"):  # YAML reads a bare off as false
            check.fail(value, f"shift {key!r} must be HH:MM-HH:MM (start before end) or off")
            ok = False
            continue
        for index in indexes:
            if index in seen:
                check.fail(value, f"shift: {WEEKDAYS[index]} is in both {seen[index]!r} and {key!r}")
                ok = False
            seen[index] = str(key)
            days[index] = hours
    return tuple(days) if ok else None


def _weekdays(text: str) -> list[int] | None:
    found: list[int] = []
    for part in text.lower().replace(" ", "").split(","):
        first, dash, last = part.partition("-")
        if first not in WEEKDAYS or (dash and last not in WEEKDAYS):
            return None
        low, high = WEEKDAYS.index(first), WEEKDAYS.index(last if dash else first)
        found.extend(range(low, high + 1) if low <= high else [*range(low, 7), *range(high + 1)])
    return found


def _hours(value: object) -> tuple[int, int] | None:
    if not isinstance(value, str):
        return None
    start, dash, end = value.replace(" ", "").partition("-")
    first, last = _CLOCK.match(start), _CLOCK.match(end)
    if not dash or first is None or last is None:
        return None
    low, high = int(first[1]) * 60 + int(first[2]), int(last[1]) * 60 + int(last[2])
    return (low, high) if low < high <= 24 * 60 else None


def _alerts(check: _Checker, node: Located | None) -> Alerts:
    if node is None:
        return Alerts()
    fields = check.mapping(node, "alerts", {"webhook"}) or {}
    if "webhook" not in fields:
        return Alerts()
    keys = {"url", "format", "timeout", "first_retry", "max_retry"}
    hook = check.mapping(fields["webhook"], "webhook", keys, required=("url",))
    if hook is None or "url" not in hook:
        return Alerts()
    url = check.string(hook["url"], "webhook url", empty=True)
    if url is None or not url.strip():
        return Alerts()  # ``url: "${ALERT_URL:-}"`` left empty: no webhook
    if not url.startswith(("http://", "https://")):
        check.fail(hook["url"], "webhook url must start with http:// or https://")
        return Alerts()
    options: dict[str, Any] = {}
    _optional(hook, "format", options, lambda n: check.choice(n, "format", ("json", "slack")))
    _optional(hook, "timeout", options, lambda n: check.number(n, "timeout", 0.1, 120))
    _optional(hook, "first_retry", options, lambda n: check.duration(n, "first_retry"))
    _optional(hook, "max_retry", options, lambda n: check.duration(n, "max_retry"))
    return Alerts(Webhook(url=url.strip(), **options))


_WHERE_KEYS = {"subcalendar", "who", "field", "summary", "source", "window", "all", "any", "not"}


def _condition(check: _Checker, node: Located, sources: dict[str, Source]) -> Condition | None:
    fields = check.mapping(node, "where", _WHERE_KEYS)
    if not fields:
        if fields is not None:
            check.fail(node, "where must name at least one condition")
        return None
    parts: list[Condition | None] = []
    for key, value in fields.items():
        if key == "subcalendar":
            parts.append(_subcalendar(check, value))
        elif key == "who":
            parts.append(_who(check, value))
        elif key == "field":
            items = value.value if isinstance(value.value, list) else [value]
            parts.extend(_field(check, item) for item in items)
        elif key == "summary":
            regex = check.regex(value, "summary")
            parts.append(SummaryMatch(regex) if regex else None)
        elif key == "source":
            names = check.strings(value, "source")
            for source in names or ():
                if source not in sources:
                    check.fail(value, f"where source {source!r} is not a configured source")
            parts.append(SourceMatch(frozenset(names)) if names else None)
        elif key == "window":
            parts.append(_window(check, value))
        elif key in ("all", "any"):
            if not isinstance(value.value, list) or not value.value:
                check.fail(value, f"{key} must be a non-empty list of conditions")
                parts.append(None)
                continue
            branches = [_condition(check, item, sources) for item in value.value]
            if any(item is None for item in branches):
                parts.append(None)
                continue
            conditions = tuple(item for item in branches if item is not None)
            parts.append(AllOf(conditions) if key == "all" else AnyOf(conditions))
        elif key == "not":
            inner_condition = _condition(check, value, sources)
            parts.append(Not(inner_condition) if inner_condition is not None else None)
    if any(part is None for part in parts):
        return None
    conditions = tuple(part for part in parts if part is not None)
    return conditions[0] if len(conditions) == 1 else AllOf(conditions)


def _subcalendar(check: _Checker, node: Located) -> Subcalendar | None:
    names = check.strings(node, "subcalendar")
    if names is None:
        return None
    exact = frozenset(name for name in names if not any(char in name for char in "*?["))
    globs = tuple(re.compile(fnmatch.translate(name)) for name in names if name not in exact)
    return Subcalendar(exact, globs)


def _who(check: _Checker, node: Located) -> Who | None:
    names = check.strings(node, "who")
    if names is None:
        return None
    exact = frozenset(name.casefold() for name in names if not any(char in name for char in "*?["))
    globs = tuple(
        re.compile(fnmatch.translate(name.casefold())) for name in names if any(c in name for c in "*?[")
    )
    return Who(exact, globs)


def _field(check: _Checker, node: Located) -> FieldMatch | None:
    fields = check.mapping(node, "field", {"name", "equals", "in", "regex", "present"}, required=("name",))
    if fields is None or "name" not in fields:
        return None
    name = check.string(fields["name"], "field name")
    tests = [key for key in ("equals", "in", "regex", "present") if key in fields]
    if not tests:
        check.fail(node, "field needs one of equals, in, regex or present")
        return None
    equals = check.string(fields["equals"], "equals", empty=True) if "equals" in fields else None
    one_of = check.strings(fields["in"], "in") if "in" in fields else None
    regex = check.regex(fields["regex"], "regex") if "regex" in fields else None
    present = check.boolean(fields["present"], "present") if "present" in fields else None
    if name is None or any(
        key in fields and value is None
        for key, value in (
            ("equals", equals),
            ("in", one_of),
            ("regex", regex),
            ("present", present),
        )
    ):
        return None
    return FieldMatch(
        name=name,
        equals=equals,
        one_of=frozenset(one_of) if one_of else None,
        regex=regex,
        present=present,
    )


def _window(check: _Checker, node: Located) -> Window | None:
    fields = check.mapping(node, "window", {"past", "future"})
    if fields is None:
        return None
    if not fields:
        check.fail(node, "window needs past, future or both")
        return None
    past = check.duration(fields["past"], "past") if "past" in fields else None
    future = check.duration(fields["future"], "future") if "future" in fields else None
    if ("past" in fields and past is None) or ("future" in fields and future is None):
        return None
    return Window(past=past, future=future)


def _server(check: _Checker, node: Located | None) -> Server:
    if node is None:
        return Server()
    allowed = {"listen", "public_url", "gzip", "max_age", "ops_listen", "ops_token"}
    fields = check.mapping(node, "server", allowed) or {}
    options: dict[str, Any] = {}
    for key, names, example in (
        ("listen", ("host", "port"), "127.0.0.1:8080"),
        ("ops_listen", ("ops_host", "ops_port"), "127.0.0.1:9090"),
    ):
        if key in fields:
            listen = parse_listen(str(fields[key].value))
            if listen is None:
                check.fail(fields[key], f"{key} must be HOST:PORT, e.g. {example}")
            else:
                options[names[0]], options[names[1]] = listen
    defaults = Server()
    if options.get("port", defaults.port) == options.get("ops_port", defaults.ops_port):
        check.fail(
            fields.get("ops_listen") or fields["listen"], "ops_listen must use another port than listen"
        )
    if "ops_token" in fields:
        token = check.string(fields["ops_token"], "ops_token", empty=True)
        if token and len(token.strip()) < MIN_OPS_TOKEN:
            check.fail(
                fields["ops_token"], f"ops_token must be at least {MIN_OPS_TOKEN} characters (or empty: none)"
            )
        elif token is not None:
            options["ops_token"] = token.strip()
    if "public_url" in fields:
        url = check.string(fields["public_url"], "public_url")
        if url is not None and not url.startswith(("http://", "https://")):
            check.fail(fields["public_url"], "public_url must start with http:// or https://")
        elif url is not None:
            options["public_url"] = url.rstrip("/")
    _optional(fields, "gzip", options, lambda n: check.boolean(n, "gzip"))
    _optional(fields, "max_age", options, lambda n: _int(check.number(n, "max_age", 0, 86400)))
    return Server(**options)


def parse_listen(text: str) -> tuple[str, int] | None:
    host, sep, port = text.strip().rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        return None
    host = host.strip("[]") or "127.0.0.1"
    return host, int(port)
