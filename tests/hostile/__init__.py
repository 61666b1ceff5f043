"""Hostile-input tests: a SECRET marker planted in internal text must reach no redacted feed.

Every case runs through the real pipeline (``build_feeds``) with the profiles that promise
redaction, and the output is searched for the marker in every reading a client or a person
could make of it: unfolded, TEXT-unescaped, NFKC, HTML entities, percent escapes and base64
decoded.
"""

from __future__ import annotations

import base64
import binascii
import html
import re
import unicodedata
from pathlib import Path
from urllib.parse import unquote

from icalproxy.config.load import parse_yaml
from icalproxy.config.model import Rules
from icalproxy.config.validate import validate
from icalproxy.core.lines import escape_text
from icalproxy.core.pipeline import BuildResult, build_feeds
from tests.support import NOW, ROOT, calendar, unfolded

MARKER = "SECRET"
# Feed name → profile; shared-master comes from the project's rules/profiles.yaml.
# The technician feed opts in to the free-text description: the scrubber is what stands
# between a link in it and the technician's phone.
PROFILES = {"client": "client", "busy": "busy", "master": "shared-master", "tech": "tech-notes"}

_CONFIG = (
    "sources: {s: {url: s.ics}}\n"
    "profiles: {tech-notes: {extends: technician, description: '{description}'}}\nfeeds:\n"
) + "".join(
    f"  {feed}: {{title: {feed}, profile: {profile}}}\n" for feed, profile in PROFILES.items()
)
_INVISIBLE = re.compile(r"[\u00ad\u200b-\u200f\u2060-\u2064\ufeff]")
_BASE64 = re.compile(r"[A-Za-z0-9+/_-]{6,}={0,2}")


def rules() -> Rules:
    profiles = ROOT / "rules" / "profiles.yaml"
    documents = [parse_yaml(profiles.read_text(), "rules/profiles.yaml", {})]
    return validate(parse_yaml(_CONFIG, "test.yaml", {}), documents, Path("/nowhere/test.yaml")).rules


def event(uid: str, *, summary: str, description: str = "", location: str = "") -> str:
    """A VEVENT body; the texts are escaped as TEXT values (newlines, commas, semicolons)."""
    lines = [
        f"UID:{uid}",
        "DTSTAMP:20261101T000000Z",
        "DTSTART:20261201T080000Z",
        "DTEND:20261201T090000Z",
        "SUMMARY:" + escape_text(summary),
    ]
    if description:
        lines.append("DESCRIPTION:" + escape_text(description))
    if location:
        lines.append("LOCATION:" + escape_text(location))
    return "\n".join(lines)


def build_events(*bodies: str) -> BuildResult:
    return build_feeds({"s": calendar(*bodies)}, rules(), NOW)


def _unescape(text: str) -> str:
    return re.sub(r"\\([\\;,nN])", lambda m: "\n" if m[1] in "nN" else m[1], text)


def _base64_readings(text: str) -> list[str]:
    found = []
    for token in _BASE64.findall(text):
        for decode in (base64.b64decode, base64.urlsafe_b64decode):
            try:
                found.append(decode(token + "=" * (-len(token) % 4)).decode("utf-8", "ignore"))
            except (binascii.Error, ValueError):
                continue
    return found


def readings(body: bytes) -> list[str]:
    """Every way the output can be read, from the raw bytes to base64-decoded words."""
    raw = unfolded(body)
    text = _unescape(raw)
    out = [raw, text]
    for _ in range(3):
        text = unquote(html.unescape(_INVISIBLE.sub("", unicodedata.normalize("NFKC", text))))
        out.append(text)
    out.extend(_base64_readings(text))
    return out


def leaks(body: bytes) -> list[str]:
    """The readings of body that show the marker (case-insensitive)."""
    return [reading for reading in readings(body) if MARKER.casefold() in reading.casefold()]
