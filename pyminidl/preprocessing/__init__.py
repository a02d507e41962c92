"""Keras's ``keras.preprocessing`` namespace: data preprocessing helpers, one module per kind.

``text`` (tf.keras's Tokenizer, stop words, ``clean``) and ``sequence`` (``pad_sequences``).
"""

from pyminidl.preprocessing import sequence, text  # noqa: F401
