"""``python -m pyminidl``: the main job (replaced by the training demo)."""

import sys


def main(argv=None):
    import pyminidl

    pyminidl.show_config()
    return 0


if __name__ == "__main__":
    sys.exit(main())
