"""Text in every script for the PDF writer: which embedded font draws each character, and
right-to-left text shaped and put in the order it is drawn.

Fonts (in `fonts/`, each with its licence, embedded into the PDF as subsets of the glyphs used):
DejaVu Sans Condensed (regular and bold) draws Latin, Greek and Cyrillic and is the first choice for
every character it has; Noto Sans Arabic draws Arabic and Noto Sans Hebrew Hebrew (their scripts'
characters go to them first: DejaVu's Arabic is poorer); Droid Sans Fallback draws Chinese, Japanese
kana and Korean Hangul, and anything else DejaVu lacks if it has it. Bold text (the title, header
labels) uses the regular script fonts: none of them is shipped in bold. A character no font has
is drawn by DejaVu as its empty box; nothing raises. Fonts are read on first use, into compact
tables (pdf_face.py: Droid Sans Fallback costs ~1 MiB and 0.01 s, where reportlab's parse took
18.6 MiB and 0.05 s), so a Latin-only export never loads the script fonts.

A text is cut into runs of characters that one font draws (`FontChain.runs`); a space between two
runs of the same font joins them, so "محمد العلي" is one run. ASCII text is one run of the primary
font without looking at its characters.

Right-to-left: reportlab draws characters left to right, one glyph per character, and shapes
nothing. So a text holding a right-to-left character (Hebrew, Arabic, or an explicit direction
mark) is shaped first (arabic-reshaper: each Arabic letter becomes its initial, medial, final or
isolated presentation form, lam-alef becomes its ligature) and then reordered by the Unicode
bidirectional algorithm (python-bidi) into the order it is drawn in, left to right, brackets
mirrored. The text's own first strong character sets its direction. Texts without such characters
never reach either step; both steps are pure Python (~50 µs for a name), so their results are cached.
Harakat (vowel marks) are kept, but drawn without the positioning a shaping engine would give them.
"""

from __future__ import annotations

import functools
import pathlib
import re
import threading
import unicodedata

import arabic_reshaper
from bidi import get_display as reorder_with_isolates
from bidi.algorithm import get_display as reorder

from exporthub.formats.pdf_face import AdvanceWidths, Face

FONT_DIR = pathlib.Path(__file__).with_name("fonts")
REGULAR_FONT = "ExportHubSans"
BOLD_FONT = "ExportHubSans-Bold"
ARABIC_FONT = "ExportHubArabic"
HEBREW_FONT = "ExportHubHebrew"
CJK_FONT = "ExportHubCJK"
FONT_FILES = {
    REGULAR_FONT: "DejaVuSansCondensed.ttf",
    BOLD_FONT: "DejaVuSansCondensed-Bold.ttf",
    ARABIC_FONT: "NotoSansArabic-Regular.ttf",
    HEBREW_FONT: "NotoSansHebrew-Regular.ttf",
    CJK_FONT: "DroidSansFallback.ttf",
}

Run = tuple[str, str]  # (font name, text)

# Characters whose script's own font draws them first (when it has them).
_ARABIC_CHARS = "\u0600-\u06ff\u0750-\u077f\u0870-\u08ff\ufb50-\ufdff\ufe70-\ufeff"
_HEBREW_CHARS = "\u0590-\u05ff\ufb1d-\ufb4f"
_ARABIC = re.compile(f"[{_ARABIC_CHARS}]")
_HEBREW = re.compile(f"[{_HEBREW_CHARS}]")
# Texts that need the bidirectional algorithm: right-to-left scripts (Hebrew, Arabic, Syriac,
# Thaana, NKo, ..., and their supplementary blocks) and the explicit direction controls.
_NEEDS_BIDI = re.compile(
    "[\u0590-\u08ff\ufb1d-\ufdff\ufe70-\ufefe\u200e\u200f\u202a-\u202e\u2066-\u2069"
    "\U00010800-\U00010fff\U0001e800-\U0001efff]"
)
_ISOLATES = re.compile("[\u2066-\u2069]")
_BIDI_CONTROLS = dict.fromkeys([0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)])
_ARABIC_LETTERS = re.compile("[\u0600-\u06ff\u0750-\u077f\u0870-\u08ff]")  # presentation forms are shaped already
_RESHAPER = arabic_reshaper.ArabicReshaper(configuration={"delete_harakat": False})
_CHOICE_LIMIT = 20_000  # characters whose font is remembered (a name pool uses a few thousand at most)
_VISUAL_CACHE = 1_024  # distinct right-to-left texts kept shaped (names repeat; at most ~2 MB)

_lock = threading.RLock()
_faces: dict[str, Face] = {}


def register_fonts() -> None:
    """Read the primary fonts once per process (the script fonts are read on first use, by `face`)."""
    with _lock:
        for name in (REGULAR_FONT, BOLD_FONT):
            face(name)


def face(font_name: str) -> Face:
    """The font, read once per process (pdf_face.py)."""
    found = _faces.get(font_name)
    if found is None:
        with _lock:
            found = _faces.get(font_name)
            if found is None:
                found = _faces[font_name] = Face(str(FONT_DIR / FONT_FILES[font_name]))
    return found


def has_glyph(font_name: str, code: int) -> bool:
    """Whether the font maps the code point to a glyph of its own (not .notdef)."""
    return bool(face(font_name).charToGlyph.get(code))


def needs_bidi(text: str) -> bool:
    return _NEEDS_BIDI.search(text) is not None


@functools.lru_cache(maxsize=_VISUAL_CACHE)
def shaped(text: str) -> str:
    """Arabic letters in their joined presentation forms, still in logical (reading) order."""
    return _RESHAPER.reshape(text) if _ARABIC_LETTERS.search(text) else text


@functools.lru_cache(maxsize=_VISUAL_CACHE)
def visual(text: str) -> str:
    """A shaped text in the order its characters are drawn, left to right, brackets mirrored.

    python-bidi's Rust-backed `bidi.get_display` leaves out rules L3-L4 (brackets are not mirrored:
    "(x)" in right-to-left text would be drawn as ")x("); its older pure-Python `bidi.algorithm`
    applies them but predates the isolate controls (U+2066-2069), which only the Rust one knows, and
    fails (an assertion) on code points Unicode has not assigned, which the Rust one takes."""
    if _ISOLATES.search(text) or not all(map(unicodedata.bidirectional, text)):  # '': unassigned
        shown = reorder_with_isolates(text)
    else:
        shown = reorder(text)
    return shown.translate(_BIDI_CONTROLS)  # their work is done, and some fonts would draw boxes


class FontChain:
    """The fonts that draw one style of text: the primary font, then the script fonts."""

    def __init__(self, primary: str) -> None:
        self.primary = primary
        self._choice: dict[str, str] = {}  # character -> font name; at most one entry per character seen
        self._spaces: dict[str, bool] = {}  # font name -> whether it draws a space

    def font_of(self, char: str) -> str:
        font = self._choice.get(char)
        if font is None:
            if len(self._choice) >= _CHOICE_LIMIT:
                self._choice.clear()
            font = self._choice[char] = self._choose(char)
        return font

    def _choose(self, char: str) -> str:
        code = ord(char)
        if _ARABIC.match(char) and has_glyph(ARABIC_FONT, code):
            return ARABIC_FONT
        if _HEBREW.match(char) and has_glyph(HEBREW_FONT, code):
            return HEBREW_FONT
        if has_glyph(self.primary, code):
            return self.primary
        if has_glyph(CJK_FONT, code):
            return CJK_FONT
        return self.primary  # no embedded font has it: the primary font's empty box

    def runs(self, text: str) -> list[Run]:
        """`text` as runs of characters that one font draws (see the module docstring)."""
        if text.isascii():
            return [(self.primary, text)] if text else []
        font_of = self.font_of
        runs: list[Run] = []
        current, start, space = "", 0, False
        for index, char in enumerate(text):
            if char == " " and space:
                continue  # stays in the run before it, which joins the next one if that has the same font
            font = font_of(char)
            if font != current:
                if current:
                    runs.append((current, text[start:index]))
                current, start = font, index
                known = self._spaces.get(font)
                if known is None:
                    known = self._spaces[font] = has_glyph(font, 32)
                space = known
        runs.append((current, text[start:]))
        return runs

    def advances(self, font_name: str) -> AdvanceWidths:
        """The font's advance widths by code point (1/1000 em; index it: each is looked up on first use)."""
        return face(font_name).widths

    def width(self, runs: list[Run], size: float) -> float:
        total = 0.0
        for font_name, text in runs:
            widths = face(font_name).widths
            total += sum([widths[ord(char)] for char in text])
        return total * size / 1000.0


_CHAINS: dict[str, FontChain] = {}


def chain(primary: str) -> FontChain:
    """The process's one chain for a primary font (its character choices are shared by every writer)."""
    with _lock:
        found = _CHAINS.get(primary)
        if found is None:
            found = _CHAINS[primary] = FontChain(primary)
        return found
