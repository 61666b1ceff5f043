"""Link, e-mail and phone scrubbing of the text a subscriber sees (pure, no I/O).

A line is read the way a person or a client program would read it: Unicode NFKC (fullwidth
``ｈｔｔｐｓ：／／``, ``＠``), the dots, slashes and colons that look alike, invisible format
characters removed, HTML entities (``&#104;ttp``, ``&colon;``) and percent escapes decoded
until nothing changes, and the bracketed ``[at]``/``[dot]``/``[.]`` of hand-obfuscated
addresses read as ``@`` and ``.``. In that reading, linkify-it-py (fuzzy links, e-mails and
IPs, the full IANA list of top-level domains plus internal ones like ``.corp``/``.lan``) and
the rules below find links and addresses; each is removed with the whole word it sits in.

A line where nothing is found is kept exactly as written. A line where something was found
is shown in its normalised reading minus what was found; if what is left is empty, a bare
label ("Link:") or still looks like a link or an address, the line goes altogether.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from functools import cache
from typing import TYPE_CHECKING, Protocol, cast

if TYPE_CHECKING:
    from linkify_it import LinkifyIt

    from icalproxy.config.model import Scrub


# Names a calendar store or a colleague uses for hosts that no public TLD list knows.
INTERNAL_SUFFIXES = (
    "corp",
    "lan",
    "internal",
    "intranet",
    "local",
    "localdomain",
    "localhost",
    "home",
    "intra",
    "priv",
    "private",
    "test",
    "example",
    "invalid",
)
# Single-label hosts that are read as links when a path follows ("wiki/Page", "go/x").
INTERNAL_HOSTS = frozenset(
    {
        "intranet",
        "intra",
        "wiki",
        "jira",
        "confluence",
        "sharepoint",
        "gitlab",
        "github",
        "gitea",
        "git",
        "svn",
        "go",
        "goto",
        "nas",
        "fileserver",
        "files",
        "file",
        "share",
        "shares",
        "srv",
        "server",
        "portal",
        "helpdesk",
        "servicedesk",
        "ticket",
        "tickets",
        "crm",
        "erp",
        "sap",
        "localhost",
        "docs",
        "drive",
        "dms",
        "owa",
        "mail",
        "webmail",
        "cloud",
        "nextcloud",
        "owncloud",
        "redmine",
        "jenkins",
        "grafana",
        "kibana",
        "teamup",
        "dispatch",
        "admin",
        "login",
        "sso",
        "vpn",
        "proxy",
        "printer",
        "scanner",
    }
)
# Schemes that need no "//": every one opens an app, a call or a document.
OPAQUE_SCHEMES = (
    "mailto",
    "sms",
    "smsto",
    "mms",
    "tel",
    "callto",
    "facetime",
    "facetime-audio",
    "skype",
    "msteams",
    "sip",
    "sips",
    "xmpp",
    "jabber",
    "irc",
    "ircs",
    "slack",
    "discord",
    "zoommtg",
    "zoomus",
    "tg",
    "whatsapp",
    "viber",
    "signal",
    "threema",
    "wechat",
    "webex",
    "webexteams",
    "gotomeeting",
    "urn",
    "magnet",
    "javascript",
    "vbscript",
    "blob",
    "file",
    "ftp",
    "sftp",
    "ssh",
    "telnet",
    "ldap",
    "ldaps",
    "smb",
    "afp",
    "nfs",
    "vnc",
    "rdp",
    "webcal",
    "webcals",
    "geo",
    "bitcoin",
    "ethereum",
    "lightning",
    "ipfs",
    "ipns",
    "matrix",
    "spotify",
    "steam",
    "intent",
    "itms",
    "itms-apps",
    "onenote",
    "evernote",
    "obsidian",
    "vscode",
    "figma",
)
_OPAQUE_SET = frozenset(OPAQUE_SCHEMES)
# Their payload may hold spaces, so they take the rest of the line.
_TO_END_OF_LINE = ("javascript", "vbscript")

_FLAGS = re.IGNORECASE
# Look-alikes NFKC keeps apart from ".", "/", "\", ":" and "@" (IDNA maps the dots itself).
_LOOKALIKES = str.maketrans(
    {
        "\u3002": ".",
        "\uff61": ".",
        "\u2024": ".",
        "\u2215": "/",
        "\u2044": "/",
        "\u29f8": "/",
        "\u2216": "\\",
        "\u29f5": "\\",
        "\u29f9": "\\",
        "\u2236": ":",
        "\ua789": ":",
        "\ufe6b": "@",
    }
)
_INVISIBLE = re.compile(
    r"[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f"
    r"\u202a-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0]"
)
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_PERCENT = re.compile(r"(?:%[0-9a-f]{2})+", _FLAGS)
_ODD = re.compile(  # look-alikes, invisible characters and the controls that are not ASCII
    r"[\u3002\uff61\u2024\u2215\u2044\u29f8\u2216\u29f5\u29f9\u2236\ua789\ufe6b\x80-\x9f\u2028\u2029]|"
    + _INVISIBLE.pattern
)
_ASCII_ODD = re.compile(r"[&%\x00-\x1f\x7f]")  # entities, escapes, controls
_BRACKET_AT = re.compile(r"\s*[\[({<]\s*(?:at|@)\s*[\])}>]\s*", _FLAGS)
_BRACKET_DOT = re.compile(r"\s*[\[({<]\s*(?:dot|\.)\s*[\])}>]\s*", _FLAGS)

# Rules start with a literal character, so that the regex engine skips ahead to it; what must
# come before is checked behind it (a lookbehind), or on the word found before it.
_SCHEME_URL = re.compile("://")  # any scheme, hxxps:// included: the whole word goes
_SCHEME_RELATIVE = re.compile(r"//(?<![\w:/]//)[^\s/]")
_COLON_BEFORE_TEXT = re.compile(r":(?=\S)")
_SCHEME_NAME = re.compile(r"(?<![\w+.-])[a-z][a-z0-9+.-]{0,30}\Z", _FLAGS)
_SCHEME_PREFIXES = ("ms-", "web+", "x-")
_DATA_URL = re.compile(r"(?:[\w.+-]+/[\w.+-]+)?(?:;[^,\s]*)*,")  # after "data:"
_WWW = re.compile(r"\bwww\d{0,3}\.\S", _FLAGS)
# host:port, a single-label host included (intranet:8080); the host has two letters at least,
# so that times (10:30, T10:30) are never ports.
_PORT = re.compile(r":\d{1,5}(?=[/?#\s]|\Z)")
_HOST_PORT = re.compile(r"(?<![\w.-])([a-z0-9][\w.-]{0,252}):\d{1,5}(?=[/?#\s]|\Z)", _FLAGS)
_TWO_LETTERS = re.compile(r"[a-z].*[a-z]", _FLAGS)
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IPV4_HINT = re.compile(r"\d\.\d{1,3}\.\d{1,3}\.\d")
_IPV4 = re.compile(rf"(?<![\w.]){_OCTET}(?:\.{_OCTET}){{3}}(?![\d])")
_IPV6_HINT = re.compile(r":[0-9a-f]{0,4}:", _FLAGS)
_IPV6 = re.compile(
    r"\[[0-9a-f]*:[0-9a-f:.]*\]"  # [2001:db8::1], as in URLs
    r"|(?<![\w:.])(?=:*[0-9a-f])(?=[0-9a-f:]*::|(?:[0-9a-f]{1,4}:){3}[0-9a-f])"
    r"[0-9a-f]{0,4}(?::[0-9a-f]{0,4}){2,7}(?![\w:])",
    _FLAGS,
)
# \\server\share, \\?\C:\…, C:\… and C:/…: names may hold spaces, so these take the rest of the
# line, up to a character Windows never allows in a name; DOMAIN\user and share\file.
_UNC = re.compile(r"\\\\[^<>\"|*\n]*|\\(?<=\w\\)\w")
_DRIVE = re.compile(r":(?<=(?<![\w.])[a-z]:)[\\/][^<>\"|*\n]*", _FLAGS)
_POSIX_PATH = re.compile(r"/(?<![\w:/.]/)[\w.%~+-]+/")
_SLASH = re.compile("/")
_BARE_HOST = re.compile(r"[(\[<'\"]*([a-z][\w-]+)", _FLAGS)
_HOST_WITH_NUMBER = re.compile(r"[a-z]+[-_]?\d+\Z", _FLAGS)
_URLISH = re.compile(r"[?=#~%&_]|\.\w")
_TRAILING = re.compile(r"[.,;:!?)\]}'\"]+\Z")
_INTERNAL_DOMAIN = re.compile(r"\.(?<=\w\.)(?:" + "|".join(INTERNAL_SUFFIXES) + r")(?![\w-]|\.\w)", _FLAGS)
# (what a line must hold for the rule to have a chance: a cheap test first, the rule)
_LINK_RULES = (
    ("://", _SCHEME_URL),
    ("//", _SCHEME_RELATIVE),
    ("www", _WWW),
    ("\\", _UNC),
    (":", _DRIVE),
    ("/", _POSIX_PATH),
    (".", _INTERNAL_DOMAIN),
)
_RESIDUE = re.compile(r"://|\\\\|:\\")

_EMAIL = re.compile(r"@(?<=[\w\"'.+-]@)[\w\[]|\"[^\"\n]*\"\s*@")
# name at host dot tld, name @ host.tld, name at host.tld: ends in a top-level domain.
_EMAIL_SPELLED = re.compile(
    r"(?<![\w.+-])[\w.+-]+(?:\s*@\s*|\s+at\s+)[a-z0-9][\w-]*"
    r"(?:(?:\s+dot\s+|\.)[\w-]+)*(?:\s+dot\s+|\.)[a-z]{2,}(?![\w-])",
    _FLAGS,
)
_PHONE = re.compile(
    r"(?:\+|\b00)\d[\d ()./-]{6,}\d"  # +49 40 555 1234, 0049…
    r"|\(\d{2,5}\)\s?\d[\d ./-]{4,}\d"  # (040) 555 1234
    r"|\b0\d{2,5}[ /-]\d{3,}(?:[ -]\d{2,})*\b"  # 040 555 1234
)

# Cheap tests: plain text without any of these cannot hold what the rules find.
# A colon is one only with something right after it (tel:x, :8080, ::1, C:\, ://): every
# rule that reads a colon needs that; "Nachtermin: Ölwechsel" holds nothing to find.
_HINT_CHARS = frozenset("/\\%&@")
_DOT_BETWEEN = re.compile(r"[.\u3002](?<=\w[.\u3002])\w")
_BRACKETED = re.compile(r"[\[({<]\s*(?:[.@]|at|dot)\s*[\])}>]", _FLAGS)
_PHONE_HINT = re.compile(r"\d\D?\d\D?\d")
_SPACES = re.compile(r"[ \t]{2,}")
_BARE_LABEL = re.compile(r"[^:]{0,40}:\W*\Z")

Span = tuple[int, int]


class _Match(Protocol):
    index: int
    last_index: int
    schema: str


@cache
def _linkifier() -> LinkifyIt:
    """linkify-it with fuzzy links, e-mails and IPs and every IANA top-level domain."""
    from linkify_it import LinkifyIt  # noqa: PLC0415  (imported when first needed: start-up)
    from linkify_it.tlds import TLDS  # noqa: PLC0415  (imported when first needed: start-up)

    linkify = LinkifyIt(options={"fuzzy_link": True, "fuzzy_email": True, "fuzzy_ip": True})
    names = sorted({str(name).lower() for name in TLDS} | set(INTERNAL_SUFFIXES))
    return cast("LinkifyIt", linkify.tlds(names, keep_old=True))


def _linkify_spans(text: str, want_links: bool, want_emails: bool) -> Iterator[Span]:
    linkify = _linkifier()
    if not linkify.pretest(text):
        return
    for match in cast("list[_Match] | None", linkify.match(text)) or ():
        if want_emails if match.schema == "mailto:" else want_links:
            yield match.index, match.last_index


def _percent_decode(match: re.Match[str]) -> str:
    return bytes.fromhex(match[0].replace("%", "")).decode("utf-8", "replace")


def normalise(line: str) -> str:
    """The reading a link detector must see: NFKC, look-alikes, no invisible characters,
    entities and percent escapes decoded (repeatedly), bracketed [at]/[dot] read as @ and ."""
    text = line
    for _ in range(4):
        before = text
        text = unicodedata.normalize("NFKC", text).translate(_LOOKALIKES)
        text = _INVISIBLE.sub("", text)
        if "&" in text:
            import html  # noqa: PLC0415  (imported when first needed: start-up)

            text = html.unescape(text)
        if "%" in text:
            text = _PERCENT.sub(_percent_decode, text)
        if text == before:
            break
    text = _CONTROLS.sub(" ", text)
    if "[" in text or "(" in text or "{" in text or "<" in text:
        text = _BRACKET_DOT.sub(".", _BRACKET_AT.sub("@", text))
    return text


def _bracketed_word(text: str) -> bool:
    """A bracketed at or dot ("[at]", "(.)"): read as @ or . by normalise, a hint of an address."""
    return ("[" in text or "(" in text or "{" in text or "<" in text) and _BRACKETED.search(text) is not None


def _needs_normalising(text: str) -> bool:
    """False only when normalise would return text unchanged. A bracket alone changes
    nothing ("(Erdgeschoss)"): only a bracketed at or dot is read anew."""
    if _ASCII_ODD.search(text) is not None:
        return True
    if _bracketed_word(text):
        return True
    if text.isascii():
        return False
    return not unicodedata.is_normalized("NFKC", text) or _ODD.search(text) is not None


def _word_start(text: str, index: int, within: int | None = None) -> int:
    """Where the word around index starts; -1 when that is more than ``within`` before it."""
    floor = 0 if within is None else max(0, index - within)
    start = text.rfind(" ", floor, index) + 1
    return -1 if start == 0 and floor > 0 else start


def _bare_host_paths(text: str) -> Iterator[Span]:
    """intranet/wiki, srv01/share, host/page?x=1 — but never A/B, km/h or Mo/Di."""
    for slash in _SLASH.finditer(text):
        at = slash.start()
        start = _word_start(text, at, within=70)
        host = _BARE_HOST.fullmatch(text, start, at) if start >= 0 else None
        if host is None:
            continue  # not a bare word before the first slash of a word
        end = text.find(" ", at)
        path = _TRAILING.sub("", text[at + 1 : end if end >= 0 else len(text)])
        if not path or path.isdigit():
            continue  # KW48/2026, Q3/2026
        name = host[1]
        if name.lower() in INTERNAL_HOSTS or _HOST_WITH_NUMBER.match(name) or _URLISH.search(path):
            yield start, at + 1


def _opaque_schemes(text: str) -> Iterator[Span]:
    """msteams:…, tel:…, data:…, javascript:… (the last two with the rest of the line)."""
    for colon in _COLON_BEFORE_TEXT.finditer(text):
        at = colon.start()
        name = _SCHEME_NAME.search(text, max(0, at - 31), at)  # the lookbehind sees further
        if name is None:
            continue
        scheme = name[0].lower()
        if scheme in _TO_END_OF_LINE or (scheme == "data" and _DATA_URL.match(text, at + 1)):
            yield name.start(), len(text)
        elif scheme in _OPAQUE_SET or scheme.startswith(_SCHEME_PREFIXES):
            yield name.start(), at + 1


def _host_ports(text: str) -> Iterator[Span]:
    if _PORT.search(text) is None:
        return
    for match in _HOST_PORT.finditer(text):
        if _TWO_LETTERS.search(match[1]):
            yield match.span()


def _link_spans(text: str, lowered: str) -> Iterator[Span]:
    if ":" in text:
        yield from _opaque_schemes(text)
        yield from _host_ports(text)
        if _IPV6_HINT.search(text):
            yield from (match.span() for match in _IPV6.finditer(text))
    if "." in text and _IPV4_HINT.search(text):
        yield from (match.span() for match in _IPV4.finditer(text))
    for gate, pattern in _LINK_RULES:
        if gate in lowered:
            for match in pattern.finditer(text):
                yield match.span()
    if "/" in text:
        yield from _bare_host_paths(text)


def _email_spans(text: str, lowered: str) -> Iterator[Span]:
    if "@" in text:
        yield from (match.span() for match in _EMAIL.finditer(text))
    if "@" in text or " at " in lowered:
        yield from (match.span() for match in _EMAIL_SPELLED.finditer(text))


def _word_bounds(text: str, spans: list[Span]) -> list[Span]:
    """Each span widened to the whole words it touches, merged where they overlap."""
    widened: list[Span] = []
    for found_start, found_end in sorted(spans):
        if widened and found_start <= widened[-1][1]:
            if found_end > widened[-1][1]:  # runs on past the words already taken
                widened[-1] = (widened[-1][0], _word_end(text, found_end))
            continue
        start = _word_start(text, found_start)
        if widened and start <= widened[-1][1]:
            widened[-1] = (widened[-1][0], _word_end(text, found_end))
        else:
            widened.append((start, _word_end(text, found_end)))
    return widened


def _word_end(text: str, index: int) -> int:
    end = text.find(" ", index)
    return len(text) if end < 0 else end


def _blank(text: str, spans: list[Span], filler: str | None = None) -> str:
    """text with each span replaced by one space, or by as many ``filler`` as it is long."""
    parts, last = [], 0
    for start, end in spans:
        parts.append(text[last:start])
        parts.append(" " if filler is None else filler * (end - start))
        last = end
    parts.append(text[last:])
    return "".join(parts)


class Scrubber:
    """What one profile removes from text: links, e-mail addresses and (optionally) phones."""

    __slots__ = ("emails", "links", "phones")

    def __init__(self, *, links: bool, emails: bool, phones: bool) -> None:
        self.links = links
        self.emails = emails
        self.phones = phones

    @classmethod
    def of(cls, options: Scrub) -> Scrubber:
        """The scrubber a profile's ``scrub:`` options ask for."""
        return cls(links=options.links, emails=options.emails, phones=options.phones)

    def scrub(self, text: str) -> str:
        """Remove links, e-mails (and phones) from each line; a line left empty, as a bare
        label or still looking like a link or address goes; whitespace is tidied."""
        if not text:
            return ""
        if not _needs_normalising(text) and not self._maybe(text):
            return text.strip()  # plain text: the common case
        kept = []
        for line in text.split("\n"):
            cleaned = self._line(line)
            if cleaned is not None:
                kept.append(cleaned)
        return "\n".join(kept).strip()

    def finds(self, text: str) -> bool:
        """Whether scrub would remove anything from text (read normalised)."""
        return any(self._spans(normalise(line)) for line in text.split("\n"))

    def _line(self, line: str) -> str | None:
        """The line as shown, or None when it goes."""
        view = normalise(line) if _needs_normalising(line) else line
        spans = self._spans(view)
        if not spans:
            return line
        cleaned = _SPACES.sub(" ", _blank(view, spans)).strip()
        if not cleaned or _BARE_LABEL.match(cleaned):
            return None
        if self._spans(normalise(cleaned)) or (self.links and _RESIDUE.search(cleaned)):
            return None  # what is left still reads as a link or an address
        return cleaned

    def _maybe(self, text: str) -> bool:
        """False when text cannot hold anything to remove (most text)."""
        if self.links or self.emails:
            if not _HINT_CHARS.isdisjoint(text) or _DOT_BETWEEN.search(text):
                return True
            if ":" in text and _COLON_BEFORE_TEXT.search(text):
                return True
            if "." in text and _WWW.search(text):  # www.: and www.! too
                return True
            if _bracketed_word(text):
                return True
            if self.emails and " dot " in text.lower():
                return True
        return self.phones and _PHONE_HINT.search(text) is not None

    def _spans(self, view: str) -> list[Span]:
        """What goes from a normalised line: whole words, sorted, not overlapping."""
        if not self._maybe(view):
            return []
        spans: list[Span] = []
        lowered = view.lower()
        if self.links:
            spans.extend(_link_spans(view, lowered))
        if self.emails:
            spans.extend(_email_spans(view, lowered))
        elif spans and "@" in view:  # the host of an address that stays is no link
            addresses = _word_bounds(view, list(_email_spans(view, lowered)))
            spans = [span for span in spans if not any(a <= span[0] < b for a, b in addresses)]
        if self.phones:
            spans.extend(match.span() for match in _PHONE.finditer(view))
        words = _word_bounds(view, spans)
        if self.links or self.emails:
            # linkify-it reads what the rules above left: most lines need it no more.
            rest = _blank(view, words, filler=" ")
            if (self.emails and "@" in rest) or _DOT_BETWEEN.search(rest):  # host.tld, an IP, a@b
                found = list(_linkify_spans(rest, self.links, self.emails))
                if found:
                    words = _word_bounds(view, words + found)
        return words


_EVERYTHING = Scrubber(links=True, emails=True, phones=False)


def looks_like_link_or_address(text: str) -> bool:
    """True when text holds anything the scrubber reads as a link or an e-mail address (in
    any of the forms above), so that a caller can refuse it at check time."""
    return _EVERYTHING.finds(text) or _RESIDUE.search(normalise(text)) is not None
