"""The process's world and distribution (no imports: the progress printer reads it)."""

WORLD = None  # LocalWorld or MpiWorld, set by initialize() (a world of one until then)
DISTRIBUTION = None  # set by set_distribution()


def is_chief():
    """Whether this process is rank 0 (it alone prints and writes files under a distribution)."""
    return WORLD is None or DISTRIBUTION is None or WORLD.rank == 0
