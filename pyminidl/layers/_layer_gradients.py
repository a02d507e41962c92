"""Layer gradients and losses: where weight gradients are summed (``accumulate_grad``) and read,
and the penalties of the latest forward."""

from pyminidl.backend import get_backend


def clear_grads(layers):
    """Forget the accumulated gradients of ``layers`` (each layer's dict, emptied in place)."""
    for layer in layers:
        layer.grads.clear()


def gradients_of(slots):
    """The gradients of ``slots`` ([(owner, weight)] as ``_trainable_slots`` gives), zeros where none."""
    xp = get_backend().xp
    out = []
    for owner, w in slots:
        g = owner.grads.get(w.name)
        out.append(xp.zeros_like(w.value) if g is None else g)
    return out


class GradientsMixin:
    """Accumulated weight gradients and the losses of the latest forward."""

    def accumulate_grad(self, name, g):
        """Add ``g`` to the gradient of weight ``name`` (the only place gradients are summed)."""
        prev = self.grads.get(name)
        self.grads[name] = g if prev is None else prev + g

    def zero_grads(self):
        """Forget every accumulated gradient (this layer and its sublayers)."""
        clear_grads(self._all_layers())

    def gradients(self):
        """Gradients aligned with ``trainable_weights`` (zeros where none was accumulated)."""
        return gradients_of(self._trainable_slots())

    @property
    def losses(self):
        """Penalties of the latest forward: weight regularizers, activity regularizer, add_loss (floats)."""
        out = list(self._losses)
        for layer in self._sublayers:
            out.extend(layer.losses)
        return out

    def add_loss(self, loss):
        """Add a penalty from inside ``call`` (differentiated through the layer's tape)."""
        if self._pending_losses is not None:
            self._pending_losses.append(loss)
        else:
            self._losses.append(float(loss))
