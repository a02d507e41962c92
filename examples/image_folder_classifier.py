"""Classify a folder of images with augmentation layers in the model (the Keras image-folder workflow).

The script writes a small folder of generated images (circles, squares and triangles of random size,
offset and colour on noisy backgrounds, one subfolder per class), loads it with
``image_dataset_from_directory`` (a training and a validation subset), and trains a model that
rescales, augments (flips, rotations, zooms, contrast: active only while training) and classifies.

Run:  python examples/image_folder_classifier.py [folder]   (needs Pillow: pip install "pyminidl[image]")
"""

import os
import sys
import tempfile

import numpy as np

import pyminidl as keras
from pyminidl import layers

CLASSES = ("circle", "square", "triangle")


def draw(shape, size, rng):
    """One (size, size, 3) uint8 image holding ``shape`` on a noisy background."""
    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    r = rng.uniform(0.25, 0.4) * size
    cy, cx = size / 2 + rng.uniform(-0.1, 0.1, 2) * size  # near the centre: a Dense model sees the outline
    if shape == "circle":
        mask = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
    elif shape == "square":
        mask = (np.abs(yy - cy) <= r * 0.8) & (np.abs(xx - cx) <= r * 0.8)
    else:  # an upward triangle: below the apex, inside the two slanted edges
        mask = (yy <= cy + r) & (yy - (cy - r) >= 2 * np.abs(xx - cx))
    image = rng.normal(60, 20, (size, size, 3))
    image[mask] = rng.uniform(150, 255, 3)
    return np.clip(image, 0, 255).astype(np.uint8)


def write_folder(folder, per_class=60, size=32, seed=0):
    """folder/<class>/<i>.png for every class; returns the folder."""
    rng = np.random.default_rng(seed)
    for name in CLASSES:
        os.makedirs(os.path.join(folder, name), exist_ok=True)
        for i in range(per_class):
            keras.utils.save_img(os.path.join(folder, name, f"{i:03d}.png"), draw(name, size, rng), scale=False)
    return folder


def build_model(image_size, num_classes):
    return keras.Sequential([
        layers.Input(image_size + (3,)),
        layers.Rescaling(1.0 / 255),
        layers.RandomFlip("horizontal", seed=1),
        layers.RandomRotation(0.05, seed=2),
        layers.RandomZoom(0.1, seed=3),
        layers.RandomContrast(0.2, value_range=(0, 1), seed=4),
        layers.Flatten(),
        layers.Dense(128, activation="relu"),
        layers.Dense(num_classes, activation="softmax"),
    ])


def main(folder=None, epochs=20, per_class=60, image_size=(24, 24), verbose=1, seed=0):
    """Write the images, train, and return (validation accuracy, class names)."""
    keras.utils.set_random_seed(seed)
    with tempfile.TemporaryDirectory() as tmp:
        folder = write_folder(folder or os.path.join(tmp, "shapes"), per_class=per_class, seed=seed)
        train, val = keras.utils.image_dataset_from_directory(
            folder, image_size=image_size, batch_size=32, validation_split=0.25, subset="both", seed=seed,
            verbose=bool(verbose))
        model = build_model(image_size, len(train.class_names))
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
        model.fit(train, validation_data=val, epochs=epochs, verbose=verbose)
        _, accuracy = model.evaluate(val, verbose=0)
    if verbose:
        print(f"classes: {train.class_names}; validation accuracy: {accuracy:.3f}")
    return accuracy, train.class_names


if __name__ == "__main__":
    try:
        main(sys.argv[1] if len(sys.argv) > 1 else None)
    except ImportError as e:  # Pillow missing: the message names the extra to install
        sys.exit(str(e))
