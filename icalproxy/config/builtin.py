"""Profiles that work with no rules file at all. A rules file may override them by name."""

from __future__ import annotations

import re

from icalproxy.config.model import Profile, Scrub

CLIENT = Profile(name="client")

BUSY = Profile(
    name="busy",
    summary="Reserved",
    description=None,
    show_status=False,
    private_events="show",  # already nothing but times
)

TECHNICIAN = Profile(
    name="technician",
    description="{description}",
    location="{location}",
    categories="all",
    scrub=Scrub(links=True, emails=True, phones=False),
    drop_description_lines=(
        re.compile(r"(?i)\b(cost|costs|kosten|price|preis|prix|invoice|rechnung|netto|brutto)\b"),
    ),
    private_events="show",
)

BUILTIN_PROFILES = {profile.name: profile for profile in (CLIENT, BUSY, TECHNICIAN)}
