"""Training loop: compile / fit / evaluate / predict (the Trainer mixin of every model)."""
