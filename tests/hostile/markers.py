"""Shared by the hostile-input suite: render one input through every profile that promises
redaction, and look for the SECRET marker in every form a reader could decode it from."""

from __future__ import annotations

import base64
import binascii
import html
import re
import unicodedata
import urllib.parse

from icalproxy.core.pipeline import BuildResult, build_feeds
from tests.support import NOW, rules_from, structure_problems

MARKER = "SECRET"
# client, busy and the shared master promise full redaction; the technician sees details,
# but never what the classes below smuggle (boundaries, typed values, controls, zones…).
RULES = rules_from(
    "sources: {s: {url: s.ics}}\n"
    "profiles:\n"
    "  shared-master: {extends: client, categories: client-facing, client_facing: ['Client: *']}\n"
    "feeds:\n"
    "  client: {title: Client}\n"
    "  busy: {title: Busy, profile: busy}\n"
    "  shared-master: {title: Shared, profile: shared-master}\n"
    "  technician: {title: Tech, profile: technician}\n"
)
REDACTING = ("client", "busy", "shared-master")
EVERY = (*REDACTING, "technician")


def render(data: str | bytes, rules: object = RULES) -> BuildResult:
    raw = data.encode() if isinstance(data, str) else data
    return build_feeds({"s": raw}, rules, NOW)  # type: ignore[arg-type]


def event(*lines: str, uid: str = "hostile-1", start: str = "DTSTART:20261201T090000Z") -> str:
    body = "\r\n".join(
        ["BEGIN:VEVENT", f"UID:{uid}", "DTSTAMP:20261101T000000Z", start, *lines, "END:VEVENT"]
    )
    return body


def calendar(*parts: str, extra: str = "") -> str:
    head = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//hostile//EN"]
    if extra:
        head.append(extra)
    return "\r\n".join([*head, *parts, "END:VCALENDAR"]) + "\r\n"


def decoded_forms(body: bytes) -> list[str]:
    """The output as a reader may see it: unfolded, TEXT-unescaped, NFKC, HTML-entity,
    percent and base64 decoded (each form separately and chained)."""
    text = re.sub(r"\r?\n[ \t]", "", body.decode("utf-8", "replace"))
    unescaped = re.sub(r"\\(.)", lambda m: "\n" if m[1] in "nN" else m[1], text)
    forms = [text, unescaped]
    normal = unicodedata.normalize("NFKC", unescaped)
    forms.append(normal)
    entities = html.unescape(normal)
    forms.append(entities)
    forms.append(urllib.parse.unquote(entities))
    for chunk in re.findall(r"[A-Za-z0-9+/=_-]{8,}", entities):
        for decoder in (base64.b64decode, base64.urlsafe_b64decode):
            try:
                forms.append(decoder(chunk + "=" * (-len(chunk) % 4)).decode("utf-8", "replace"))
            except (binascii.Error, ValueError):
                continue
    return forms


def leaks(body: bytes, marker: str = MARKER) -> bool:
    return any(marker.casefold() in form.casefold() for form in decoded_forms(body))


def assert_clean(result: BuildResult, feeds: tuple[str, ...] = REDACTING, marker: str = MARKER) -> None:
    for name in feeds:
        body = result.feeds[name].body
        assert not leaks(body, marker), f"{marker} reached feed {name}:\n{body.decode('utf-8', 'replace')}"
        assert structure_problems(body) == [], name
