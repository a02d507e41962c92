"""tf.keras's ``keras.preprocessing.sequence`` namespace: ``pad_sequences`` (the same function as
``pyminidl.utils.pad_sequences``).

Example:
    >>> from pyminidl.preprocessing.sequence import pad_sequences
    >>> pad_sequences([[1, 2], [3]]).tolist()
    [[1, 2], [0, 3]]
"""

from pyminidl.utils.sequence_utils import pad_sequences

__all__ = ["pad_sequences"]
