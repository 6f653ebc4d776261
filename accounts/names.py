"""Plain text rules for people's names, shared by the model, the services
and the selectors (no database access here)."""

import re
import unicodedata

# Characters that reorder or hide text: a name with them can read as
# another name on screen.
INVISIBLE_CHARACTERS = frozenset(
    [chr(code) for code in range(0x200B, 0x2010)]
    + [chr(code) for code in range(0x202A, 0x202F)]
    + [chr(code) for code in range(0x2066, 0x206A)]
    + ["\ufeff"]
)

# Latin letters (and digits) that look like Cyrillic ones, after casefold:
# "B" → "b" → "в", "H" → "h" → "н".
HOMOGLYPHS = str.maketrans(
    {
        "a": "а",
        "e": "е",
        "o": "о",
        "p": "р",
        "c": "с",
        "x": "х",
        "y": "у",
        "k": "к",
        "m": "м",
        "t": "т",
        "h": "н",
        "b": "в",
        "ё": "е",
        "0": "о",
        "3": "з",
    }
)

_SPACES = re.compile(r"\s+")


def name_clean(value: str) -> str:
    """A name as stored: no bidi controls or zero-width characters, other
    control characters and runs of white space turned into one space."""
    value = unicodedata.normalize("NFC", value)
    characters = []
    for character in value:
        category = unicodedata.category(character)
        if character in INVISIBLE_CHARACTERS or category == "Cf":
            continue
        if category in ("Cc", "Zl", "Zp"):
            characters.append(" ")
            continue
        characters.append(character)
    return _SPACES.sub(" ", "".join(characters)).strip()


def name_skeleton(name: str) -> str:
    """What a name looks like on screen, for comparing names that differ
    only by look-alike letters: "Aннa Пeтpовa" (Latin a, e, p) and
    "Анна Петрова" share the skeleton "аннапетрова"."""
    decomposed = unicodedata.normalize("NFKD", name)
    without_marks = "".join(character for character in decomposed if not unicodedata.combining(character))
    mapped = unicodedata.normalize("NFKC", without_marks).casefold().translate(HOMOGLYPHS)
    return "".join(character for character in mapped if character.isalpha())


def display_name_skeleton(first_name: str, last_name: str) -> str:
    """The skeleton of the name shown for a person (first and last name)."""
    return name_skeleton(first_name + " " + last_name)
