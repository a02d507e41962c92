"""Text preprocessing: tf.keras's ``Tokenizer`` and helpers, stop words and noise cleaning.

The NLP pipeline in steps: ``clean`` (Unicode normalisation, markup, control characters, spacing)
-> tokenise (``text_to_word_sequence``, ``Tokenizer``) -> drop stop words (``stop_words=``)
-> a vocabulary (``Tokenizer.word_index``) -> sequences of indices (``texts_to_sequences``)
-> ``pad_sequences``. ``layers.TextVectorization`` does the same inside a model.

tf.keras compatibility: ``Tokenizer``, ``text_to_word_sequence``, ``one_hot`` and ``hashing_trick``
reproduce tf.keras 2's outputs (word_index order, OOV index 1, ``num_words``, matrix modes and the
JSON layout). Two documented differences, both only where tf.keras is unusable:

* ``unicode_punctuation=True`` (default): non-ASCII punctuation (Unicode category P*, e.g. "、", "。",
  "«") and non-ASCII whitespace (e.g. the ideographic space U+3000) also separate tokens. ASCII
  text tokenises exactly as tf.keras (whose ``filters`` are ASCII only, so "世界。" stayed one token).
  ``unicode_punctuation=False`` gives tf.keras's behaviour on every input.
* ``hashing_trick``/``one_hot`` hash with a stable BLAKE2b digest by default, not Python's ``hash``,
  which is salted per process (PYTHONHASHSEED) and so gave different ids on every run.
  ``hash_function="md5"`` is tf.keras's md5 option, bit for bit.

Example:
    >>> tok = Tokenizer(oov_token="<OOV>")
    >>> tok.fit_on_texts(["the cat sat", "the dog"])
    >>> tok.texts_to_sequences(["the bird sat"])
    [[2, 1, 4]]
"""

import collections
import functools
import hashlib
import html
import itertools
import json
import re
import unicodedata

import numpy as np

from pyminidl._text import (_LAST_PUNCTUATION_PLANE_END, _check_text, _unicode_separators,  # noqa: F401
                            get_stop_words, resolve_stop_words)

DEFAULT_FILTERS = '!"#$%&()*+,-./:;<=>?@[\\]^_`{|}~\t\n'
_MATRIX_MODES = ("binary", "count", "tfidf", "freq")

# ---------------------------------------------------------------------------- checks


def _check_texts(texts, where, arg="texts"):
    """A list of texts (not a single string, which would be read character by character)."""
    if isinstance(texts, (str, bytes)):
        raise TypeError(f"{where}: `{arg}` must be a list of strings, not a single string. "
                        f"Received: {arg}={texts[:50]!r}. Wrap it in a list: [{arg}].")
    if isinstance(texts, np.ndarray):
        texts = texts.reshape(-1).tolist()
    try:
        return list(texts)
    except TypeError:
        raise TypeError(f"{where}: `{arg}` must be a list of strings. Received: {arg}={texts!r}") from None


# ---------------------------------------------------------------------------- tokenising


@functools.lru_cache(maxsize=64)
def _translate_table(filters, split, unicode_punctuation):
    table = {ord(c): split for c in _unicode_separators()} if unicode_punctuation else {}
    table.update({ord(c): split for c in filters})
    return table


def text_to_word_sequence(input_text, filters=DEFAULT_FILTERS, lower=True, split=" ", unicode_punctuation=True):
    """Splits a text into words, as tf.keras's ``text_to_word_sequence``.

    Characters in ``filters`` (and, with ``unicode_punctuation``, non-ASCII punctuation and
    whitespace) become ``split``; the text is cut on ``split`` and empty pieces dropped.

    Args:
        input_text: a string.
        filters: characters to treat as separators (tf.keras's default: ASCII punctuation, tab, newline).
        lower: lowercase first (Unicode-aware: "É" -> "é").
        split: the separator.
        unicode_punctuation: also split on non-ASCII punctuation and whitespace (see the module doc).

    Returns:
        list of str.

    Raises:
        TypeError: ``input_text`` is not a string.

    Example:
        >>> text_to_word_sequence("정말 좋아요! Très bien.")
        ['정말', '좋아요', 'très', 'bien']
    """
    input_text = _check_text(input_text, "text_to_word_sequence", "input_text")
    if lower:
        input_text = input_text.lower()
    input_text = input_text.translate(_translate_table(filters, split, bool(unicode_punctuation)))
    return [w for w in input_text.split(split) if w]


def _stable_hash(word):
    """64-bit BLAKE2b of the UTF-8 bytes: the same in every process (unlike ``hash``)."""
    return int.from_bytes(hashlib.blake2b(word.encode("utf-8"), digest_size=8).digest(), "little")


def _md5_hash(word):
    return int(hashlib.md5(word.encode("utf-8")).hexdigest(), 16)


def hashing_trick(text, n, hash_function=None, filters=DEFAULT_FILTERS, lower=True, split=" ", analyzer=None):
    """Words -> ids in ``[1, n - 1]`` by hashing, as tf.keras's ``hashing_trick`` (id = hash % (n - 1) + 1).

    Args:
        text: a string.
        n: the size of the id space (ids 1..n-1; 0 stays free for padding).
        hash_function: None (a stable BLAKE2b hash, the same in every process), "md5" (tf.keras's
            md5 option, identical ids) or a callable str -> int.
        filters, lower, split: as ``text_to_word_sequence``.
        analyzer: a callable text -> list of words, replacing ``text_to_word_sequence``.

    Returns:
        list of int.

    Raises:
        ValueError: ``n`` < 2. TypeError: ``text`` is not a string.

    Example:
        >>> hashing_trick("the cat the", 100, hash_function="md5")[0] == hashing_trick("the", 100, "md5")[0]
        True
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 2:
        raise ValueError(f"hashing_trick: `n` must be an integer >= 2 (ids fall in [1, n - 1]). Received: n={n!r}")
    if hash_function is None:
        hash_function = _stable_hash
    elif hash_function == "md5":
        hash_function = _md5_hash
    elif not callable(hash_function):
        raise ValueError(f"hashing_trick: `hash_function` must be None, 'md5' or a callable. "
                         f"Received: hash_function={hash_function!r}")
    text = _check_text(text, "hashing_trick", "text")
    seq = text_to_word_sequence(text, filters=filters, lower=lower, split=split) if analyzer is None else analyzer(text)
    return [(hash_function(w) % (n - 1) + 1) for w in seq]


def one_hot(input_text, n, filters=DEFAULT_FILTERS, lower=True, split=" ", analyzer=None):
    """``hashing_trick`` with the default (stable) hash, as tf.keras's ``one_hot`` (word ids, not vectors).

    Example:
        >>> ids = one_hot("good movie good", 50)
        >>> ids[0] == ids[2]
        True
    """
    return hashing_trick(input_text, n, hash_function=None, filters=filters, lower=lower, split=split,
                         analyzer=analyzer)


# ---------------------------------------------------------------------------- cleaning

_SCRIPT_STYLE = re.compile(r"<(script|style)\b[^>]*>.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<!--.*?-->|<[A-Za-z/!?][^<>]*>", re.DOTALL)
_SPACES = re.compile(r"\s+")


def _strip_control(text):
    """Control characters (Cc) become spaces; format characters (Cf: zero-width space, BOM, soft hyphen) vanish."""
    out = []
    for c in text:
        cat = unicodedata.category(c)
        if cat == "Cc" and c not in "\t\n\r":
            out.append(" ")
        elif cat != "Cf":
            out.append(c)
    return "".join(out)


def clean(text, normalization="NFKC", strip_markup=True, strip_control=True, collapse_whitespace=True, lower=False):
    """Noise cleaning before tokenising: markup, entities, Unicode forms, control characters, spacing.

    In order: the text is Unicode-normalised (NFKC folds full-width "Ｆｏｏ" to "Foo", ligatures and
    compatibility forms, and composes Hangul jamo into syllables); HTML/XML tags are removed
    (``<script>``/``<style>`` with their content; every other tag becomes a space, so "a<br>b" gives
    "a b") and entities decoded ("&amp;" -> "&", then normalised again); control characters become
    spaces and zero-width format characters vanish; runs of whitespace collapse to one space and
    the ends are trimmed.

    It does not correct spelling, expand contractions, remove punctuation or stop words, or
    segment languages written without spaces: those are the tokeniser's and the user's steps.

    Args:
        text: a string.
        normalization: "NFKC" (default), "NFC", "NFKD", "NFD" or None (no normalisation).
        strip_markup: remove tags and decode entities.
        strip_control: remove control and zero-width characters.
        collapse_whitespace: one space between words, none at the ends.
        lower: also lowercase (Unicode-aware).

    Returns:
        str.

    Raises:
        TypeError: ``text`` is not a string. ValueError: an unknown ``normalization``.

    Example:
        >>> clean("<p>Ｇｒｅａｔ&nbsp;&amp;   cheap!</p>\\u200b")
        'Great & cheap!'
    """
    text = _check_text(text, "clean", "text")
    if normalization not in (None, "NFC", "NFKC", "NFD", "NFKD"):
        raise ValueError(f"clean: `normalization` must be one of 'NFKC', 'NFC', 'NFKD', 'NFD' or None. "
                         f"Received: normalization={normalization!r}")
    if normalization is not None:  # first, so full-width "＜ｂ＞" is seen as a tag
        text = unicodedata.normalize(normalization, text)
    if strip_markup:
        text = html.unescape(_TAG.sub(" ", _SCRIPT_STYLE.sub(" ", text)))
        if normalization is not None:  # entities may decode to compatibility forms (&nbsp; -> U+00A0)
            text = unicodedata.normalize(normalization, text)
    if strip_control:
        text = _strip_control(text)
    if collapse_whitespace:
        text = _SPACES.sub(" ", text).strip()
    return text.lower() if lower else text


# ---------------------------------------------------------------------------- Tokenizer


class Tokenizer:
    """tf.keras's text tokenizer: a word index by frequency, texts -> sequences or matrices.

    ``fit_on_texts`` counts words; ``word_index`` numbers them from 1 by descending count, ties
    in order of first appearance (index 0 is never a word; ``oov_token``, when set, is 1).
    ``num_words`` keeps only indices below it when converting (the index itself keeps every word).

    Args:
        num_words: keep the ``num_words - 1`` most frequent words when converting (None: all).
        filters: characters removed (as separators) before splitting.
        lower: lowercase the texts.
        split: the word separator.
        char_level: every character is a token (Hangul syllables are single characters).
        oov_token: if set, the token for out-of-vocabulary words (index 1).
        analyzer: a callable text -> list of tokens, replacing the built-in splitting.
        stop_words: None, "english" (the shipped list) or a list of words, dropped from the
            tokens (after lowercasing) both when fitting and when converting.
        unicode_punctuation: non-ASCII punctuation and whitespace also separate words (see the module doc).

    Raises:
        ValueError: ``num_words`` <= 0. TypeError: unknown keyword arguments.

    Example:
        >>> tok = Tokenizer(num_words=3)
        >>> tok.fit_on_texts(["a a b c"])
        >>> tok.texts_to_sequences(["a b c"])
        [[1, 2]]
    """

    def __init__(self, num_words=None, filters=DEFAULT_FILTERS, lower=True, split=" ", char_level=False,
                 oov_token=None, analyzer=None, stop_words=None, unicode_punctuation=True, **kwargs):
        if "nb_words" in kwargs:  # Keras 1's name, which tf.keras still read
            num_words = kwargs.pop("nb_words")
        document_count = kwargs.pop("document_count", 0)
        if kwargs:
            raise TypeError(f"Unrecognized keyword arguments: {str(kwargs)}")
        if num_words is not None and (isinstance(num_words, bool) or not isinstance(num_words, (int, np.integer))
                                      or num_words <= 0):
            raise ValueError(f"Tokenizer: `num_words` must be None or a positive integer. Received: num_words={num_words!r}")
        self.word_counts = collections.OrderedDict()
        self.word_docs = collections.defaultdict(int)
        self.filters, self.split, self.lower = filters, split, lower
        self.num_words = None if num_words is None else int(num_words)
        self.document_count = document_count
        self.char_level = char_level
        self.oov_token = oov_token
        self.index_docs = collections.defaultdict(int)
        self.word_index = {}
        self.index_word = {}
        self.analyzer = analyzer
        self._stop_words_arg = None if stop_words is None else (
            stop_words if isinstance(stop_words, str) else sorted(resolve_stop_words(stop_words, "Tokenizer")))
        self.stop_words = resolve_stop_words(stop_words, "Tokenizer")
        self.unicode_punctuation = bool(unicode_punctuation)

    def _tokens(self, text, index):
        """The tokens of one text (a string, or a list of tokens taken as is), stop words dropped."""
        if isinstance(text, list):
            seq = [_check_text(t, "Tokenizer", "texts", index) for t in text]
            seq = [t.lower() for t in seq] if self.lower else seq
        else:
            text = _check_text(text, "Tokenizer", "texts", index)
            if self.char_level:
                seq = text.lower() if self.lower else text
            elif self.analyzer is None:
                seq = text_to_word_sequence(text, filters=self.filters, lower=self.lower, split=self.split,
                                            unicode_punctuation=self.unicode_punctuation)
            else:
                seq = self.analyzer(text)
        if self.stop_words:
            seq = [w for w in seq if w not in self.stop_words]
        return seq

    def fit_on_texts(self, texts):
        """Count the words of ``texts`` (a list of strings, or of token lists) and rebuild ``word_index``.

        Raises:
            TypeError: ``texts`` is a single string, or holds something other than strings.
        """
        texts = _check_texts(texts, "Tokenizer.fit_on_texts")
        new, docs = collections.Counter(), collections.Counter()  # C-speed counting, first-seen key order
        for i, text in enumerate(texts):
            seq = self._tokens(text, i)
            new.update(seq)
            docs.update(set(seq))
        self.document_count += len(texts)
        counts = self.word_counts
        for w, c in new.items():
            counts[w] = counts.get(w, 0) + c
        for w, c in docs.items():
            self.word_docs[w] += c
        # A stable sort by count keeps first-appearance order among equal counts (tf.keras's order).
        wcounts = sorted(counts.items(), key=lambda x: x[1], reverse=True)
        sorted_voc = [] if self.oov_token is None else [self.oov_token]
        sorted_voc.extend(wc[0] for wc in wcounts)
        self.word_index = dict(zip(sorted_voc, range(1, len(sorted_voc) + 1)))
        self.index_word = {c: w for w, c in self.word_index.items()}
        for w, c in list(self.word_docs.items()):
            self.index_docs[self.word_index[w]] = c

    def fit_on_sequences(self, sequences):
        """Count document frequencies from index sequences (for ``sequences_to_matrix(mode="tfidf")``)."""
        self.document_count += len(sequences)
        for seq in sequences:
            for i in set(seq):
                self.index_docs[i] += 1

    def texts_to_sequences(self, texts):
        """Each text as a list of word indices; unknown words (and indices >= ``num_words``) become
        ``oov_token``'s index, or are dropped without one."""
        return list(self.texts_to_sequences_generator(texts))

    def texts_to_sequences_generator(self, texts):
        """``texts_to_sequences`` one text at a time."""
        texts = _check_texts(texts, "Tokenizer.texts_to_sequences")
        num_words = self.num_words
        oov = self.word_index.get(self.oov_token) if self.oov_token is not None else None
        # indices >= num_words count as unknown, so one dict lookup per word decides
        kept = self.word_index if not num_words else {w: i for w, i in self.word_index.items() if i < num_words}
        get = kept.get
        for n, text in enumerate(texts):
            seq = self._tokens(text, n)
            if oov is None:
                yield [i for i in map(get, seq) if i is not None]
            else:
                yield list(map(get, seq, itertools.repeat(oov, len(seq))))

    def sequences_to_texts(self, sequences):
        """Each index sequence as a space-joined text (the inverse of ``texts_to_sequences``, lowercased)."""
        return list(self.sequences_to_texts_generator(sequences))

    def sequences_to_texts_generator(self, sequences):
        """``sequences_to_texts`` one sequence at a time."""
        num_words = self.num_words
        oov = self.word_index.get(self.oov_token) if self.oov_token is not None else None
        for seq in sequences:
            vect = []
            for num in seq:
                word = self.index_word.get(num)
                if word is not None and not (num_words and num >= num_words):
                    vect.append(word)
                elif oov is not None:
                    vect.append(self.index_word[oov])
            yield " ".join(vect)

    def texts_to_matrix(self, texts, mode="binary"):
        """``sequences_to_matrix(texts_to_sequences(texts), mode)``: (len(texts), num_words) float64."""
        return self.sequences_to_matrix(self.texts_to_sequences(texts), mode=mode)

    def _matrix_width(self, mode):
        if mode not in _MATRIX_MODES:
            raise ValueError(f"Unknown vectorization mode: {mode!r}. Expected one of {_MATRIX_MODES}.")
        if mode == "tfidf" and not self.document_count:
            raise ValueError("Fit the Tokenizer on some data before using tfidf mode.")
        if self.num_words:
            return self.num_words
        if self.word_index:
            return len(self.word_index) + 1
        raise ValueError("Specify a dimension (`num_words` argument), or fit on some text data first.")

    def sequences_to_matrix(self, sequences, mode="binary"):
        """One row per sequence, one column per index below ``num_words`` (or the vocabulary size + 1).

        Modes (c = the index's count in the row, n = the row's length, D = ``document_count``,
        df = ``index_docs[j]``): "binary" 1, "count" c, "freq" c / n, "tfidf"
        (1 + ln c) * ln(1 + D / (1 + df)) — tf.keras's formula.

        Raises:
            ValueError: an unknown mode, tfidf before fitting, or no width known.
        """
        num_words = self._matrix_width(mode)
        x = np.zeros((len(sequences), num_words))
        for i, seq in enumerate(sequences):
            if not len(seq):
                continue
            counts = collections.Counter(j for j in seq if j < num_words)
            for j, c in counts.items():
                if mode == "count":
                    x[i][j] = c
                elif mode == "freq":
                    x[i][j] = c / len(seq)
                elif mode == "binary":
                    x[i][j] = 1
                else:
                    x[i][j] = (1 + np.log(c)) * np.log(1 + self.document_count / (1 + self.index_docs.get(j, 0)))
        return x

    def get_config(self):
        """tf.keras's config (dicts as JSON strings); ``stop_words``/``unicode_punctuation`` only when not default."""
        config = {
            "num_words": self.num_words, "filters": self.filters, "lower": self.lower, "split": self.split,
            "char_level": self.char_level, "oov_token": self.oov_token, "document_count": self.document_count,
            "word_counts": json.dumps(self.word_counts), "word_docs": json.dumps(self.word_docs),
            "index_docs": json.dumps(self.index_docs), "index_word": json.dumps(self.index_word),
            "word_index": json.dumps(self.word_index),
        }
        if self._stop_words_arg is not None:
            config["stop_words"] = self._stop_words_arg
        if not self.unicode_punctuation:
            config["unicode_punctuation"] = False
        return config

    def to_json(self, **kwargs):
        """The tokenizer as a JSON string (tf.keras's layout); ``tokenizer_from_json`` reads it back.

        Args:
            **kwargs: passed to ``json.dumps`` (e.g. ``ensure_ascii=False`` to keep Korean readable).
        """
        return json.dumps({"class_name": type(self).__name__, "config": self.get_config()}, **kwargs)


def tokenizer_from_json(json_string):
    """A ``Tokenizer`` from ``Tokenizer.to_json`` output (also tf.keras's): plain JSON, no code is run.

    Raises:
        ValueError: not a tokenizer JSON.

    Example:
        >>> tok = Tokenizer(); tok.fit_on_texts(["좋은 영화"])
        >>> tokenizer_from_json(tok.to_json()).word_index
        {'좋은': 1, '영화': 2}
    """
    try:
        config = dict(json.loads(json_string).get("config"))
        word_counts = json.loads(config.pop("word_counts"), object_pairs_hook=collections.OrderedDict)
        word_docs = json.loads(config.pop("word_docs"))
        index_docs = {int(k): v for k, v in json.loads(config.pop("index_docs")).items()}
        index_word = {int(k): v for k, v in json.loads(config.pop("index_word")).items()}
        word_index = json.loads(config.pop("word_index"))
    except (TypeError, ValueError, KeyError, AttributeError) as e:
        raise ValueError(f"tokenizer_from_json: not a Tokenizer JSON string ({type(e).__name__}: {e}).") from None
    tokenizer = Tokenizer(**config)
    tokenizer.word_counts = word_counts
    tokenizer.word_docs = collections.defaultdict(int, word_docs)  # so fit_on_texts may continue
    tokenizer.index_docs = collections.defaultdict(int, index_docs)
    tokenizer.word_index = word_index
    tokenizer.index_word = index_word
    return tokenizer


__all__ = [
    "DEFAULT_FILTERS", "Tokenizer", "clean", "get_stop_words", "hashing_trick", "one_hot", "resolve_stop_words",
    "text_to_word_sequence", "tokenizer_from_json",
]
