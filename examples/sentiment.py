"""Sentiment of generated movie reviews with Embedding -> LSTM and Embedding -> Bidirectional(GRU).

The reviews are generated here (offline): neutral words, a few sentiment words, and negations
("not great" is negative, "not boring" positive), so the order of the words matters and a bag of
words is not enough. Reviews have different lengths: they are pre-padded with 0 and the Embedding's
mask_zero makes the recurrent layers skip the padding.

Run: python examples/sentiment.py  (held-out accuracy >= 0.9 for both models with the defaults)
"""

import numpy as np

import pyminidl as keras
from pyminidl import layers
from pyminidl.utils import pad_sequences

POSITIVE = ["great", "wonderful", "excellent", "loved", "amazing", "brilliant", "moving", "fun"]
NEGATIVE = ["terrible", "awful", "boring", "hated", "waste", "poor", "dull", "weak"]
NEUTRAL = ["the", "movie", "film", "plot", "actors", "story", "was", "and", "it", "a", "really", "this", "of",
           "ending", "music", "very", "is", "scene", "cast", "director"]
NEGATION = "not"
VOCAB = ["<pad>"] + NEUTRAL + POSITIVE + NEGATIVE + [NEGATION]
INDEX = {w: i for i, w in enumerate(VOCAB)}


def review(rng):
    """(text, label): one or two sentiment words, each negated with probability 0.4; label 1 when
    the (negation-adjusted) sentiment is positive."""
    label = int(rng.random() < 0.5)
    words = list(rng.choice(NEUTRAL, size=int(rng.integers(3, 20))))
    for _ in range(int(rng.integers(1, 3))):
        negate = rng.random() < 0.4
        pool = POSITIVE if label != negate else NEGATIVE  # a negated word says the opposite
        phrase = ([NEGATION] if negate else []) + [str(rng.choice(pool))]
        at = int(rng.integers(0, len(words) + 1))
        words[at:at] = phrase
    return " ".join(words), label


def dataset(n, seed, maxlen):
    rng = np.random.default_rng(seed)
    texts, labels = zip(*(review(rng) for _ in range(n)))
    ids = [[INDEX[w] for w in text.split()] for text in texts]
    return pad_sequences(ids, maxlen=maxlen), np.array(labels, dtype="float32"), texts


def build(kind, units=32):
    recurrent = layers.LSTM(units) if kind == "lstm" else layers.Bidirectional(layers.GRU(units // 2))
    model = keras.Sequential([layers.Input((None,), dtype="int32"),
                              layers.Embedding(len(VOCAB), 16, mask_zero=True),
                              recurrent,
                              layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="binary_crossentropy", metrics=["accuracy"])
    return model


def main(samples=4000, epochs=6, maxlen=40, verbose=1):
    """Train both models; returns {"lstm": accuracy, "bidirectional_gru": accuracy} on held-out reviews."""
    keras.utils.set_random_seed(0)
    x, y, texts = dataset(samples, seed=0, maxlen=maxlen)
    x_test, y_test, _ = dataset(max(samples // 4, 200), seed=1, maxlen=maxlen)
    if verbose:
        print("example review:", texts[0], "->", "positive" if y[0] else "negative")
    results = {}
    for kind in ("lstm", "bidirectional_gru"):
        model = build(kind)
        model.fit(x, y, batch_size=64, epochs=epochs, validation_split=0.1, verbose=verbose)
        results[kind] = float(model.evaluate(x_test, y_test, verbose=0)[1])
        if verbose:
            print(f"{kind}: held-out accuracy {results[kind]:.3f}")
    return results


if __name__ == "__main__":
    main()
