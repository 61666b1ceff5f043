"""Batch twin of feedcheck's icalendar_check.py: imports icalendar once, checks many files.

Run with the Python of feedcheck's venv:  python -I icalendar_batch.py LISTFILE
LISTFILE holds one path per line. For each path, in order, one JSON line on stdout:
{"ok": true, "events": N, "version": V} or {"ok": false, "error": "...", ["events": N]}.
The acceptance rule is icalendar_check.py's: ``Calendar.from_ical(data, multiple=True)`` must
not raise, must find a calendar, and no component may record ``errors``. icalendar caches the
zones of VTIMEZONEs it has read; the cache is emptied between files, so every file sees what a
fresh process sees. Exit status 3 when icalendar is not importable.
"""

import os
import sys
import warnings


def check(icalendar, data):
    try:
        calendars = icalendar.Calendar.from_ical(data, multiple=True)
    except Exception as exc:  # noqa: BLE001 - icalendar raises ValueError and friends
        return {"ok": False, "error": f"from_ical: {type(exc).__name__}: {exc}"}
    if not calendars:
        return {"ok": False, "error": "from_ical found no calendar"}
    problems = []
    events = 0
    for cal in calendars:
        if cal.name != "VCALENDAR":
            problems.append(f"top-level component is {cal.name}, not VCALENDAR")
        for comp in cal.walk():
            if comp.name == "VEVENT":
                events += 1
            for prop, msg in getattr(comp, "errors", []) or []:
                where = f"{comp.name} {prop}" if prop else comp.name
                problems.append(f"{where}: {msg}")
    if problems:
        more = f" (+{len(problems) - 3} more)" if len(problems) > 3 else ""
        return {"ok": False, "error": "; ".join(problems[:3]) + more, "events": events}
    return {"ok": True, "events": events, "version": icalendar.__version__}


def fresh_zone_cache():
    """Drop the zones icalendar cached from earlier files' VTIMEZONEs."""
    from icalendar.timezone import tzp

    cache = getattr(tzp, "_TZP__tz_cache", None)
    if isinstance(cache, dict):
        cache.clear()
    else:
        tzp.use_default()


def load():
    import icalendar

    warnings.simplefilter("ignore")  # the single-file helper prints them to stderr, unread
    return icalendar


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # -I leaves the folder out
    from batch import main

    main(load, check, before_each=fresh_zone_cache)
