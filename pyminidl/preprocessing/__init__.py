"""Keras's ``keras.preprocessing`` namespace: data preprocessing helpers, one module per kind."""
