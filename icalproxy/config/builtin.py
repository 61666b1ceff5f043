"""Profiles that work with no rules file at all. A rules file may override them by name."""

from __future__ import annotations

import fnmatch
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

# What a technician needs on site: the named job fields (never the free-text description,
# where costs and notes hide in forms no word list catches), the address, their own
# sub-calendar names only; private jobs show as busy.
TECHNICIAN = Profile(
    name="technician",
    description="[{status}][\n{details}]",
    location="{address}",
    categories="client-facing",
    client_facing=(re.compile(fnmatch.translate("Technician: *")),),
    scrub=Scrub(links=True, emails=True, phones=False),
    details=("Job type", "Materials", "Access notes", "Contact phone"),
    private_events="busy",
)

BUILTIN_PROFILES = {profile.name: profile for profile in (CLIENT, BUSY, TECHNICIAN)}
