"""``python -m speechbrain_ext.models``: the model zoo, a header, then one line per
model with its architecture, width, depth and parameter count (millions, counted as paper 002 counts them)."""
import argparse
import sys

from speechbrain_ext.models.registry import count_parameters
from speechbrain_ext.models.zoo import ZOO, zoo_config


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m speechbrain_ext.models",
                                     description="List the zoo: name, architecture, width, depth and parameters "
                                                 "(millions, counted as paper 002 counts them).")
    parser.add_argument("names", nargs="*", help="only these models (default: all)")
    args = parser.parse_args(argv)
    names = args.names or list(ZOO)
    width = max(len(n) for n in names + ["model"])
    print(f"{'model':<{width}} {'architecture':<12} {'dim':>5} {'layers':>6} {'params (M)':>10}")
    for name in names:
        config = zoo_config(name)
        kind = type(config).__name__.removesuffix("Config").lower()
        print(f"{name:<{width}} {kind:<12} {config.dim:>5} {config.num_layers:>6} "
              f"{count_parameters(config) / 1e6:>10.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
