"""Batch twin of feedcheck's libical_check.py: loads libical's bindings once, checks many files.

Run with a Python that has gi and the ICalGLib 3.0 typelib (Debian: python3-gi +
gir1.2-ical-3.0):  python3 -I libical_batch.py LISTFILE
LISTFILE holds one path per line. For each path, in order, one JSON line on stdout:
{"ok": true, "events": N, "notes": [...]} or {"ok": false, "error": "...", ["events": N]}.
The acceptance rule is libical_check.py's: ``Component.new_from_string`` must return a
component, every top-level component must be a VCALENDAR, and no component may carry an
X-LIC-ERROR property. Exit status 3 when the bindings are not available.
"""

import os
import sys


def check(I, data):  # noqa: E741 - the name the single-file helper gives the module
    notes = []
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("utf-8", errors="replace")
        notes.append("invalid UTF-8 replaced before parsing")
    try:
        root = I.Component.new_from_string(text)
    except TypeError:  # the bindings raise when the C parser returns NULL
        root = None
    if root is None:
        return {"ok": False, "error": "parser returned no component (unterminated or unparsable input)"}

    if root.isa() == I.ComponentKind.XROOT_COMPONENT:  # several top-level components
        tops = []
        c = root.get_first_component(I.ComponentKind.ANY_COMPONENT)
        while c is not None:
            tops.append(c)
            c = root.get_next_component(I.ComponentKind.ANY_COMPONENT)
    else:
        tops = [root]

    problems = []
    counts = {"events": 0}

    def walk(comp):
        name = I.Component.kind_to_string(comp.isa())
        if comp.isa() == I.ComponentKind.VEVENT_COMPONENT:
            counts["events"] += 1
        p = comp.get_first_property(I.PropertyKind.XLICERROR_PROPERTY)
        while p is not None:
            problems.append(f"{name}: {p.get_xlicerror()}")
            p = comp.get_next_property(I.PropertyKind.XLICERROR_PROPERTY)
        sub = comp.get_first_component(I.ComponentKind.ANY_COMPONENT)
        while sub is not None:
            walk(sub)
            sub = comp.get_next_component(I.ComponentKind.ANY_COMPONENT)

    for top in tops:
        if top.isa() != I.ComponentKind.VCALENDAR_COMPONENT:
            problems.append(
                f"top-level component is {I.Component.kind_to_string(top.isa())}, not VCALENDAR"
            )
        walk(top)

    if problems:
        more = f" (+{len(problems) - 3} more)" if len(problems) > 3 else ""
        return {"ok": False, "error": "; ".join(problems[:3]) + more, "events": counts["events"]}
    return {"ok": True, "events": counts["events"], "notes": notes}


def load():
    import gi

    gi.require_version("ICalGLib", "3.0")
    from gi.repository import ICalGLib

    return ICalGLib


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # -I leaves the folder out
    from batch import main

    main(load, check)
