"""Sentiment of short product reviews (English and Korean), the NLP lesson step by step, offline.

Steps: generate noisy reviews -> clean (markup, full-width letters, spacing) -> tokenise ->
drop stop words -> token sequences -> pad (to the 95th percentile length, so rare very long
reviews do not set the width) -> a bag-of-words model: TextVectorization(multi_hot) + Dense.
The Embedding + RNN version of this lesson is examples/sentiment.py.

Run: python examples/text_classification.py  (held-out accuracy >= 0.95 with the defaults)
"""

import numpy as np

import pyminidl as keras
from pyminidl import layers
from pyminidl.preprocessing.text import Tokenizer, clean
from pyminidl.utils import pad_sequences

POSITIVE = ["great", "wonderful", "excellent", "loved", "amazing", "brilliant", "최고예요", "좋아요", "재미있어요",
            "감동적이에요"]
NEGATIVE = ["terrible", "awful", "boring", "hated", "waste", "poor", "별로예요", "지루해요", "최악이에요", "실망했어요"]
NEUTRAL_EN = ["the", "movie", "film", "plot", "actors", "story", "was", "and", "it", "a", "really", "this", "of",
              "ending", "music", "very", "is", "product", "delivery", "price"]
NEUTRAL_KO = ["영화", "배우", "이야기", "정말", "너무", "이", "제품", "배송", "가격", "음악"]
NOISE = ["<br />", "&amp;", "  ", "\t", "<b>", "</b>", "\u200b"]


def _review(rng, label, korean):
    """Some neutral words, two or three words of the label's sentiment, sometimes one of the other."""
    neutral = NEUTRAL_KO if korean else NEUTRAL_EN
    sentiment = [w for w in (POSITIVE if label else NEGATIVE) if (w[0] >= "\uac00") == korean]
    other = [w for w in (NEGATIVE if label else POSITIVE) if (w[0] >= "\uac00") == korean]
    words = list(rng.choice(neutral, size=int(rng.integers(4, 40 if rng.random() < 0.05 else 14))))
    words += list(rng.choice(sentiment, size=int(rng.integers(2, 4))))
    if rng.random() < 0.3:
        words.append(str(rng.choice(other)))
    rng.shuffle(words)
    text = " ".join(w + (str(rng.choice(NOISE)) if rng.random() < 0.15 else "") for w in words)
    if rng.random() < 0.2:  # full-width letters, as typed with a CJK input method
        text = "".join(chr(ord(c) + 0xFEE0) if "a" <= c <= "z" else c for c in text)
    return text.capitalize() + ("!" if label else ".")


def make_reviews(n, seed=0):
    """``n`` generated reviews (about a third in Korean) and their labels (1 positive, 0 negative)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, size=n)
    texts = [_review(rng, int(y), rng.random() < 0.35) for y in labels]
    return texts, labels.astype("float32")


def lesson_steps(texts, verbose=1):
    """Clean -> tokenise -> stop words -> sequences -> pad, with the Tokenizer; returns the padded ids."""
    cleaned = [clean(t, lower=True) for t in texts]
    tokenizer = Tokenizer(oov_token="<OOV>", stop_words="english")
    tokenizer.fit_on_texts(cleaned)
    sequences = tokenizer.texts_to_sequences(cleaned)
    lengths = [len(s) for s in sequences]
    maxlen = int(np.percentile(lengths, 95))  # the longest, but not the rare outliers
    padded = pad_sequences(sequences, maxlen=maxlen, padding="post", truncating="post")
    if verbose:
        print("raw:      ", texts[0])
        print("cleaned:  ", cleaned[0])
        print("sequence: ", sequences[0])
        print(f"vocabulary {len(tokenizer.word_index)} words; lengths up to {max(lengths)}, padded to {maxlen} "
              f"(95th percentile): {padded.shape}")
    return cleaned, padded


def main(n=3000, epochs=8, seed=0, verbose=1):
    """Train the bag-of-words model on cleaned strings; returns the held-out accuracy."""
    keras.utils.set_random_seed(seed)
    texts, labels = make_reviews(n, seed)
    cleaned, _ = lesson_steps(texts, verbose)
    split = int(0.8 * n)
    x_train, x_test = np.array(cleaned[:split]), np.array(cleaned[split:])
    y_train, y_test = labels[:split], labels[split:]
    vectorize = layers.TextVectorization(output_mode="multi_hot", stop_words="english")
    vectorize.adapt(x_train)
    model = keras.Sequential([vectorize, layers.Dense(16, activation="relu"), layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=epochs, batch_size=32, verbose=verbose)
    pred = model.predict(x_test, verbose=0).ravel() > 0.5
    accuracy = float(np.mean(pred == (y_test > 0.5)))
    if verbose:
        print(f"held-out accuracy: {accuracy:.3f} on {len(y_test)} reviews")
        for review in ["정말 최고예요 배우 좋아요", "the plot was boring, a waste"]:
            print(f"{review!r}: {model.predict(np.array([review]), verbose=0)[0, 0]:.2f}")
    return accuracy


if __name__ == "__main__":
    main()
