"""The loop both Python batch drivers share: load the library once, then one JSON line per file.

    python -I DRIVER.py LISTFILE     (LISTFILE: one path per line)

``check(library, data)`` gets each file's bytes and returns the helper's JSON object.

Exit status 2 on a usage error, 3 when the library cannot be loaded (as feedcheck's helpers).
A check that raises is that file's failure, as the single-file helper would have died on it.
"""

import json
import sys


def main(load, check, before_each=None):
    if len(sys.argv) != 2:
        print(f"usage: {sys.argv[0]} LISTFILE", file=sys.stderr)
        sys.exit(2)
    try:
        library = load()
    except (ImportError, ValueError) as exc:
        print(f"not available: {exc}", file=sys.stderr)
        sys.exit(3)
    with open(sys.argv[1], encoding="utf-8") as fh:
        paths = [line.rstrip("\n") for line in fh if line.strip()]
    for path in paths:
        if before_each is not None:
            before_each()
        try:
            with open(path, "rb") as fh:
                data = fh.read()
        except OSError as exc:
            result = {"ok": False, "error": f"cannot read input: {exc}"}
        else:
            result = _checked(check, library, data)
        sys.stdout.write(json.dumps(result) + "\n")
        sys.stdout.flush()


def _checked(check, library, data):
    try:
        return check(library, data)
    except Exception as exc:  # noqa: BLE001 - the single-file helper would die: a failure
        return {"ok": False, "error": f"helper crashed: {type(exc).__name__}: {exc}"}
