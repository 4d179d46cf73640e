"""``python -m speechbrain_ext.models``: the model zoo, one line per model
with its parameter count (millions, counted as paper 002 counts them)."""
import argparse
import sys

from speechbrain_ext.models.registry import count_parameters
from speechbrain_ext.models.zoo import ZOO, zoo_config


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m speechbrain_ext.models",
                                     description="List the zoo: name and parameters (millions).")
    parser.add_argument("names", nargs="*", help="only these models (default: all)")
    args = parser.parse_args(argv)
    names = args.names or list(ZOO)
    width = max(len(n) for n in names)
    for name in names:
        print(f"{name:<{width}} {count_parameters(zoo_config(name)) / 1e6:7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
