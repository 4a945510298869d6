"""Exact SMS arithmetic: plain punctuation, GSM-7/UCS-2 segments and cost.

One SMS part holds 160 GSM-7 septets or 70 UCS-2 (UTF-16) units; in a longer message
each part gives 6 octets to a header, leaving 153 or 67. GSM-7 extension characters
(``^ { } \\ [ ~ ] | €``, form feed) take two septets and never straddle two parts; a
surrogate pair (most emoji) takes two units and is never split. One character outside
GSM-7 makes the whole message UCS-2, so a pasted curly apostrophe can double the cost:
hence :func:`normalise`. National language shift tables are not used.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

Encoding = Literal["gsm7", "ucs2"]

# 3GPP TS 23.038 default alphabet, in code order (0x1B, the escape, is not a character
# anyone types, so it is left out) and its extension table (each costs two septets).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")
_GSM = GSM7_BASIC | GSM7_EXTENSION

# (single part, each part of a multipart message), in septets or UTF-16 units.
LIMITS: dict[str, tuple[int, int]] = {"gsm7": (160, 153), "ucs2": (70, 67)}

# Smart-encoding map ported from Twilio's message-segment-calculator
# (src/libs/SmartEncodingMap.ts, MIT licence, (c) 2021 Twilio Inc), grouped here by
# replacement. Deliberate differences, each tested: every space-like character
# (no-break, en/em/thin spaces, C1 controls, tab) becomes ONE space, not two (or seven
# for a tab); U+201A SINGLE LOW-9 QUOTATION MARK is a quote, so ' rather than ','; the
# upstream values of U+2039/U+203A (‹ ›) were swapped; and we add the soft hyphen
# (removed), the non-breaking and figure hyphens, minus sign, prime and double prime.
_SMART_BY_REPLACEMENT: dict[str, str] = {
    '"': "\u00ab\u00bb\u201c\u201d\u02ba\u02ee\u201f\u201e\u275d\u275e\u301d\u301e\uff02\u2033",
    "'": "\u2018\u2019\u02bb\u02c8\u02bc\u02bd\u02b9\u201b\uff07\u00b4\u02ca\u0060\u02cb"
    "\u275b\u275c\u0313\u0314\ufe10\ufe11\u201a\u2032",
    "/": "\u00f7\u29f8\u0337\u0338\u2044\u2215\uff0f",
    "\\": "\u29f9\u29f5\u20e5\ufe68\uff3c",
    "_": "\u0332\uff3f\u2017",
    "|": "\u20d2\u20d3\u2223\uff5c\u23b8\u23b9\u23d0\u239c\u239f",
    "-": "\u23bc\u23bd\u2015\ufe63\uff0d\u2010\u2043\u2014\u2013\u2022\u2011\u2012\u2212",
    "@": "\ufe6b\uff20",
    "$": "\ufe69\uff04",
    "!": "\u01c3\ufe15\ufe57\uff01",
    "#": "\ufe5f\uff03",
    "%": "\ufe6a\uff05",
    "&": "\ufe60\uff06",
    ",": "\u0326\ufe50\ufe51\uff0c\uff64\u3001",
    "(": "\u2768\u276a\ufe59\uff08\u27ee\u2985",
    ")": "\u2769\u276b\ufe5a\uff09\u27ef\u2986",
    "*": "\u204e\u2217\u229b\u2722\u2723\u2724\u2725\u2731\u2732\u2733\u273a\u273b\u273c"
    "\u273d\u2743\u2749\u274a\u274b\u29c6\ufe61\uff0a",
    "+": "\u02d6\ufe62\uff0b",
    ".": "\u3002\ufe52\uff0e\uff61",
    ":": "\u02d0\u02f8\u2982\ua789\ufe13\uff1a",
    ";": "\u204f\ufe14\ufe54\uff1b",
    "<": "\ufe64\uff1c\u2039",
    "=": "\u0347\ua78a\ufe66\uff1d",
    ">": "\ufe65\uff1e\u203a",
    "?": "\ufe16\ufe56\uff1f",
    "^": "\u02c6\u0302\uff3e\u1dcd",
    "{": "\u2774\ufe5b\uff5b",
    "}": "\u2775\ufe5c\uff5d",
    "~": "\u02dc\u02f7\u0303\u0330\u0334\u223c\uff5e",
    " ": "\u00a0\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u202f"
    "\u205f\u3000\u008d\u009f\u0080\u0090\u009b\u0009\u2028\u2029",
    "": "\u0010\u0000\u0003\u0004\u0017\u0019\u0011\u0012\u0013\u0014\u2060\u200b\ufeff\u00ad",
}
SMART_ENCODING_MAP: dict[str, str] = {
    char: plain for plain, chars in _SMART_BY_REPLACEMENT.items() for char in chars
}
SMART_ENCODING_MAP.update({"\u00bc": "1/4", "\u00bd": "1/2", "\u00be": "3/4", "\u2026": "..."})
SMART_ENCODING_MAP.update({"\uff3b": "[", "\uff3d": "]", "\u203c": "!!"})
# Fullwidth digits and letters, and small capital letters (U+1D00 …), become plain.
SMART_ENCODING_MAP.update({chr(0xFF10 + i): str(i) for i in range(10)})
SMART_ENCODING_MAP.update({chr(0xFF21 + i): chr(ord("A") + i) for i in range(26)})
SMART_ENCODING_MAP.update(
    zip(
        "\u1d00\u0299\u1d04\u1d05\u1d07\ua730\u0262\u029c\u026a\u1d0a\u1d0b\u029f\u1d0d"
        "\u0274\u1d0f\u1d18\u0280\ua731\u1d1b\u1d1c\u1d20\u1d21\u028f\u1d22",
        "ABCDEFGHIJKLMNOPRSTUVWYZ",  # no small capital Q or X upstream
        strict=True,
    )
)

# Friendlier names than Unicode's for the characters people actually paste.
_LABELS: dict[str, tuple[str, str]] = {
    "\u2019": ("curly apostrophe", "curly apostrophes"),
    "\u2018": ("curly opening quote", "curly opening quotes"),
    "\u201c": ("curly opening double quote", "curly opening double quotes"),
    "\u201d": ("curly closing double quote", "curly closing double quotes"),
    "\u201e": ("low double quote", "low double quotes"),
    "\u201a": ("low single quote", "low single quotes"),
    "\u2026": ("ellipsis", "ellipses"),
    "\u2013": ("en dash", "en dashes"),
    "\u2014": ("em dash", "em dashes"),
    "\u00a0": ("non-breaking space", "non-breaking spaces"),
    "\u00ad": ("soft hyphen", "soft hyphens"),
    "\t": ("tab", "tabs"),
    "\u2022": ("bullet", "bullets"),
}


@dataclass(frozen=True)
class SegmentCount:
    """How a text goes out as SMS: encoding, parts and the units in each part."""

    encoding: Encoding
    segments: int
    characters: int  # user-visible characters (grapheme clusters, CR and LF count one each)
    units: int  # septets (escapes included) for gsm7, UTF-16 code units for ucs2
    per_segment: list[int]
    non_gsm: tuple[str, ...]  # the characters that forced UCS-2, each once, in order

    @property
    def per_message(self) -> int:
        """Units one part can hold: 160/70 for a single part, 153/67 in a multipart text."""
        single, multi = LIMITS[self.encoding]
        return single if self.segments == 1 else multi

    @property
    def remaining(self) -> int:
        """Units still free in the last part before another part is needed."""
        return self.per_message - self.per_segment[-1]


def graphemes(text: str) -> list[str]:
    """Split ``text`` into user-visible characters (an approximation of UAX #29).

    Combining marks, variation selectors, emoji modifiers, tags and zero-width joiner
    sequences stay with their base; regional indicators pair into flags. CR and LF stay
    separate, as they are two characters in an SMS.
    """
    clusters: list[str] = []
    for char in text:
        cp = ord(char)
        if clusters and (
            unicodedata.category(char) in ("Mn", "Me", "Mc")
            or cp in (0x200C, 0x200D)
            or 0x1F3FB <= cp <= 0x1F3FF
            or 0xE0020 <= cp <= 0xE007F
            or (clusters[-1][-1] == "\u200d" and (cp >= 0x2000 and char.isprintable()))
            or (_is_regional(cp) and len(clusters[-1]) == 1 and _is_regional(ord(clusters[-1])))
        ):
            clusters[-1] += char
        else:
            clusters.append(char)
    return clusters


def _is_regional(cp: int) -> bool:
    return 0x1F1E6 <= cp <= 0x1F1FF


def _describe(char: str, n: int) -> str:
    if char in _LABELS:
        return _LABELS[char][n != 1]
    return "× " + unicodedata.name(char, f"U+{ord(char):04X}").lower()


def _shown(char: str) -> str:
    if not char.isprintable() or char.isspace() or unicodedata.category(char)[0] in "MC":
        return f"U+{ord(char):04X}"
    return char


def normalise(text: str) -> tuple[str, list[str]]:
    """Make "smart" punctuation plain so it does not force the dearer UCS-2 encoding.

    The text is first put into Unicode NFC form (so a letter typed as letter + accent,
    such as ``n`` + U+0303, becomes the single ``ñ`` that GSM-7 has), then each
    character in :data:`SMART_ENCODING_MAP` is replaced. Returns the plain text and
    human-readable notes, one per kind of change, e.g.
    ``"2 curly apostrophes (’) made plain (')"``. Letters are never stripped of
    accents: ``Siobhán`` stays as it is (and costs UCS-2).
    """
    notes: list[str] = []
    composed = unicodedata.normalize("NFC", text)
    joined = sum(
        any(unicodedata.combining(c) for c in g) and unicodedata.normalize("NFC", g) != g
        for g in graphemes(text)
    )
    if joined:
        notes.append(
            f"{joined} letter{'s' if joined != 1 else ''} typed with a separate accent "
            "joined into one character (e.g. n + ~ → ñ)"
        )
    found: dict[str, int] = {}
    out: list[str] = []
    for char in composed:
        plain = SMART_ENCODING_MAP.get(char)
        if plain is None:
            out.append(char)
        else:
            out.append(plain)
            found[char] = found.get(char, 0) + 1
    for char, n in found.items():
        plain = SMART_ENCODING_MAP[char]
        what = f"made plain ({plain})" if plain.strip() else "made a plain space"
        what = "removed" if plain == "" else what
        notes.append(f"{n} {_describe(char, n)} ({_shown(char)}) {what}")
    # Again, in case a plain letter now meets a following accent (fullwidth Ａ + ́ → Á).
    return unicodedata.normalize("NFC", "".join(out)), notes


def encoding_for(text: str) -> Encoding:
    """``gsm7`` if every character is in the GSM-7 alphabet or its extension, else ``ucs2``."""
    return "gsm7" if all(c in _GSM for c in text) else "ucs2"


def _units(char: str, encoding: Encoding) -> int:
    if encoding == "gsm7":
        return 2 if char in GSM7_EXTENSION else 1
    return 2 if ord(char) > 0xFFFF else 1


def split(text: str) -> list[str]:
    """The parts ``text`` is sent as, filled greedily; joined they give ``text`` back.

    A two-unit character that does not fit in what is left of a part starts the next.
    """
    if not isinstance(text, str):
        raise TypeError(f"SMS text must be a str, not {type(text).__name__}")
    encoding = encoding_for(text)
    single, multi = LIMITS[encoding]
    sizes = [_units(c, encoding) for c in text]
    if sum(sizes) <= single:
        return [text]
    parts: list[str] = []
    start = used = 0
    for i, size in enumerate(sizes):
        if used + size > multi:
            parts.append(text[start:i])
            start, used = i, 0
        used += size
    parts.append(text[start:])
    return parts


def count(text: str) -> SegmentCount:
    """Count ``text`` exactly as it would be sent (it is not normalised first).

    Empty text counts as 1 segment of 0 characters: a provider still charges for a
    message with an empty body, and nothing downstream has to handle zero parts.
    """
    parts = split(text)
    encoding = encoding_for(text)
    per_segment = [sum(_units(c, encoding) for c in part) for part in parts]
    clusters = graphemes(text)
    non_gsm = dict.fromkeys(g for g in clusters if any(c not in _GSM for c in g))
    return SegmentCount(
        encoding=encoding,
        segments=len(parts),
        characters=len(clusters),
        units=sum(per_segment),
        per_segment=per_segment,
        non_gsm=tuple(non_gsm),
    )


def cost_pence(segments: int, pence_per_segment: float) -> float:
    """What ``segments`` parts cost, in pence, without binary rounding noise (3 × 3.3 = 9.9)."""
    if segments < 0 or not pence_per_segment >= 0:
        raise ValueError(f"Cannot price {segments} segments at {pence_per_segment}p each.")
    return float(Decimal(str(pence_per_segment)) * segments)


def estimate(text: str, pence_per_segment: float) -> dict[str, Any]:
    """Everything a compose screen shows about one text, after normalising it.

    Keys: ``text`` (as typed), ``plain_text`` (what will be sent), ``notes`` (what
    normalising changed), ``count`` (a :class:`SegmentCount` of the plain text),
    ``original_count`` (of the text as typed), ``encoding``, ``segments``,
    ``characters``, ``remaining`` (units left in the last part), ``non_gsm``,
    ``cost_pence``, ``original_cost_pence``, ``saved_pence`` and ``summary``.
    """
    plain, notes = normalise(text)
    counted, original = count(plain), count(text)
    cost = cost_pence(counted.segments, pence_per_segment)
    original_cost = cost_pence(original.segments, pence_per_segment)
    name = "GSM-7" if counted.encoding == "gsm7" else "Unicode (UCS-2)"
    texts = "text" if counted.segments == 1 else "texts"
    return {
        "text": text,
        "plain_text": plain,
        "notes": notes,
        "count": counted,
        "original_count": original,
        "encoding": counted.encoding,
        "segments": counted.segments,
        "characters": counted.characters,
        "remaining": counted.remaining,
        "non_gsm": counted.non_gsm,
        "cost_pence": cost,
        "original_cost_pence": original_cost,
        "saved_pence": float(Decimal(str(original_cost)) - Decimal(str(cost))),
        "summary": f"{counted.segments} {texts}, {counted.characters} characters, {name}, "
        f"{cost:g}p per recipient",
    }
