"""Text preprocessing throughput: adapt + vectorise 25,000 generated IMDB-length reviews.

Reviews are drawn from a Zipf-distributed vocabulary of 20,000 words (about 230 words each, IMDB's
mean), with punctuation and capitals. Measured, in tokens per second (median of ``--reps``, the
peers interleaved rep by rep):

* pyminidl ``Tokenizer``: fit_on_texts + texts_to_sequences;
* pyminidl ``TextVectorization``: adapt, then vectorise (batches of 1000) to int sequences of length
  256 and to multi_hot;
* tf.keras's legacy ``Tokenizer`` and Keras's ``TextVectorization``, when TensorFlow is installed,
  in the same run. Before timing, outputs are checked against each other (word_index equal).

Run: python benchmarks/bench_text.py [--n 25000] [--reps 3]
"""

import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _harness  # noqa: E402

_harness.setup_threads(int(os.environ.get("BENCH_THREADS", "1")))

import numpy as np  # noqa: E402

from pyminidl import layers  # noqa: E402
from pyminidl.preprocessing.text import Tokenizer  # noqa: E402


def make_reviews(n, mean_words=230, vocab=20000, seed=0):
    rng = np.random.default_rng(seed)
    words = np.array([f"w{i}" for i in range(vocab)])
    ranks = np.minimum(rng.zipf(1.2, size=n * mean_words * 2), vocab) - 1
    lengths = np.clip(rng.normal(mean_words, 60, size=n).astype(int), 10, None)
    out, pos = [], 0
    for length in lengths:
        tokens = words[ranks[pos:pos + length]].tolist()
        pos += length
        tokens[0] = tokens[0].capitalize()
        out.append(" ".join(tokens[:-1]) + ", " + tokens[-1] + ".")
    return out, int(lengths.sum())


def _batched(vectorize, data, mode, batch=1000):
    """Vectorise in batches, as a pipeline would (25,000 x 20,000 multi_hot floats would need 2 GB)."""
    outs = [vectorize(data[i:i + batch]) for i in range(0, len(data), batch)]
    return np.concatenate(outs) if mode == "int" else outs[-1]


def _peers(texts):
    """name -> callable running adapt + vectorise once."""

    def ours_tokenizer():
        tok = Tokenizer(num_words=20000)
        tok.fit_on_texts(texts)
        return tok.texts_to_sequences(texts)

    def ours_tv(mode):
        def run():
            kwargs = {"output_sequence_length": 256} if mode == "int" else {}
            tv = layers.TextVectorization(max_tokens=20000, output_mode=mode, **kwargs)
            tv.adapt(texts)
            data = np.array(texts, dtype=object)
            return _batched(lambda b: tv(b), data, mode)
        return run

    peers = {"pyminidl Tokenizer": ours_tokenizer, "pyminidl TextVectorization int": ours_tv("int"),
             "pyminidl TextVectorization multi_hot": ours_tv("multi_hot")}
    peers.update(_tf_peers(texts))
    return peers


def _tf_peers(texts):
    try:
        import tensorflow as tf
    except ImportError:
        print("# TensorFlow not installed: tf.keras peers skipped (pip install tensorflow-cpu to compare)")
        return {}

    def tf_tokenizer():
        tok = tf.keras.preprocessing.text.Tokenizer(num_words=20000)
        tok.fit_on_texts(texts)
        return tok.texts_to_sequences(texts)

    def tf_tv(mode):
        def run():
            kwargs = {"output_sequence_length": 256} if mode == "int" else {}
            tv = tf.keras.layers.TextVectorization(max_tokens=20000, output_mode=mode, **kwargs)
            tv.adapt(texts)
            return _batched(lambda b: np.asarray(tv(tf.constant(b))), np.array(texts, dtype=object), mode)
        return run

    return {"tf.keras Tokenizer": tf_tokenizer, "Keras TextVectorization int": tf_tv("int"),
            "Keras TextVectorization multi_hot": tf_tv("multi_hot")}


def _check(peers, texts):
    """Outputs agree before anything is timed."""
    ours = peers["pyminidl Tokenizer"]()
    if "tf.keras Tokenizer" in peers:
        assert ours == peers["tf.keras Tokenizer"](), "Tokenizer sequences differ from tf.keras's"
        a = peers["pyminidl TextVectorization int"]()
        b = peers["Keras TextVectorization int"]()
        assert np.array_equal(np.asarray(a), b), "TextVectorization ids differ from Keras's"
    assert len(ours) == len(texts) and all(ours)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=25000)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args(argv)
    texts, tokens = make_reviews(args.n)
    peers = _peers(texts)
    _check(peers, texts)
    times = {name: [] for name in peers}
    for _ in range(args.reps):
        for name, fn in peers.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    print(f"# {args.n} reviews, {tokens} tokens; threads={os.environ.get('OMP_NUM_THREADS')}")
    print(f"{'peer':40s} {'median s':>9s} {'min s':>7s} {'max s':>7s} {'Mtokens/s':>10s}")
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"{name:40s} {med:9.2f} {min(ts):7.2f} {max(ts):7.2f} {tokens / med / 1e6:10.2f}")
        print(json.dumps({"op": "text_adapt_vectorize", "peer": name, "reviews": args.n, "tokens": tokens,
                          "median_s": med, "min_s": min(ts), "max_s": max(ts), "tokens_per_s": tokens / med}))


if __name__ == "__main__":
    main()
