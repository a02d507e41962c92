"""Text helpers shared by ``pyminidl.preprocessing.text`` and ``layers.TextVectorization``: the string
check, the shipped stop words and the Unicode separators.

Outside both packages on purpose: importing anything under ``pyminidl.preprocessing`` runs that
namespace's ``__init__``, which imports the dataset utilities, which import the layers, so the
layers cannot import from it.
"""

import functools
import importlib.resources
import unicodedata

_LAST_PUNCTUATION_PLANE_END = 0x20000  # no punctuation or whitespace beyond plane 1 (checked in the tests)


def _check_text(text, where, arg="texts", index=None):
    """``text`` as a str (bytes decoded as UTF-8); a clear TypeError for anything else."""
    if isinstance(text, str):
        return text
    if isinstance(text, bytes):
        return text.decode("utf-8")
    at = "" if index is None else f" at index {index}"
    raise TypeError(f"{where}: `{arg}` must hold strings; found {type(text).__name__}{at}: {text!r}")


@functools.lru_cache(maxsize=None)
def get_stop_words(language="english"):
    """The stop-word list shipped with pyminidl, as a frozenset of lowercase words.

    Args:
        language: "english" (the one list shipped: 176 function words and contractions).

    Returns:
        frozenset of str.

    Raises:
        ValueError: an unknown language.

    Example:
        >>> "the" in get_stop_words("english")
        True
    """
    if language != "english":
        raise ValueError(f"get_stop_words: the shipped stop-word list is 'english'. Received: language={language!r}; "
                         "pass your own list as stop_words=[...] for other languages.")
    raw = importlib.resources.files("pyminidl.preprocessing").joinpath("english_stop_words.txt").read_text("utf-8")
    return frozenset(line.strip() for line in raw.splitlines() if line.strip() and not line.startswith("#"))


def resolve_stop_words(stop_words, where="stop_words"):
    """None, "english" (the shipped list) or an iterable of strings -> a frozenset (or None)."""
    if stop_words is None:
        return None
    if isinstance(stop_words, str):
        if stop_words == "english":
            return get_stop_words("english")
        raise ValueError(f"{where}: `stop_words` must be None, 'english' or a list of strings. "
                         f"Received: stop_words={stop_words!r}")
    try:
        words = list(stop_words)
    except TypeError:
        raise TypeError(f"{where}: `stop_words` must be None, 'english' or a list of strings. "
                        f"Received: stop_words={stop_words!r}") from None
    for i, w in enumerate(words):
        _check_text(w, where, "stop_words", i)
    return frozenset(w.decode("utf-8") if isinstance(w, bytes) else w for w in words)


@functools.lru_cache(maxsize=1)
def _unicode_separators():
    """Every non-ASCII code point that is punctuation (category P*) or whitespace.

    Planes 2-16 hold none (ideographs, private use, unassigned), so the scan stops at U+1FFFF;
    letters and digits are skipped before the slower category lookup."""
    return tuple(c for c in map(chr, range(0x80, _LAST_PUNCTUATION_PLANE_END))
                 if c.isspace() or (not c.isalnum() and unicodedata.category(c)[0] == "P"))
