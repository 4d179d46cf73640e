"""Small helpers shared by the corpus generators: random picks and
identifiers in the real datasets' formats, speaker splits and CSV lines.

Every function takes a numpy Generator (from ``core.rng_for``), so ids are
determined by the seed alone.

Example
-------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> pick(rng, ["a", "b", "c"]) in "abc"
True
>>> len(hex_string(rng, 8)), len(uuid_like(rng))
(8, 36)
>>> unique_values(rng, 3, lambda r: str(int(r.integers(5))), taken={"0"})[0] != "0"
True
>>> split_counts(10, (0.8, 0.1, 0.1))
[8, 1, 1]
>>> csv_lines([["a", "x, y"], ["b", "z"]])
['a,"x, y"', 'b,z']
"""
import csv
import io
import string

HEX = "0123456789abcdef"
ALNUM = string.ascii_letters + string.digits


def pick(rng, items):
    """One of ``items``, drawn uniformly."""
    return items[int(rng.integers(len(items)))]


def random_string(rng, length, alphabet):
    """``length`` characters drawn uniformly from ``alphabet``."""
    idx = rng.integers(len(alphabet), size=length)
    return "".join(alphabet[int(i)] for i in idx)


def hex_string(rng, length):
    """``length`` lowercase hexadecimal characters."""
    return random_string(rng, length, HEX)


def uuid_like(rng):
    """A lowercase ``8-4-4-4-12`` hexadecimal id, like a UUID."""
    return "-".join(hex_string(rng, n) for n in (8, 4, 4, 4, 12))


def unique_values(rng, count, make, taken=None):
    """Draw ``count`` values (strings, numbers ...) with ``make(rng)``,
    skipping any already in ``taken`` (a set, updated in place) so ids never
    collide."""
    taken = set() if taken is None else taken
    out = []
    while len(out) < count:
        value = make(rng)
        if value not in taken:
            taken.add(value)
            out.append(value)
    return out


def split_counts(total, fractions, minimum=1):
    """Split ``total`` items by ``fractions`` (first part gets the rest);
    every later part gets at least ``minimum`` items when ``total`` allows."""
    counts = [0] * len(fractions)
    for i in range(1, len(fractions)):
        counts[i] = max(minimum, int(round(total * fractions[i])))
    counts[0] = total - sum(counts[1:])
    if counts[0] < minimum:
        raise ValueError(f"cannot split {total} items into {fractions} "
                         f"with at least {minimum} each")
    return counts


def csv_lines(rows, delimiter=","):
    """Format rows (lists of values) as CSV lines, quoting where needed."""
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=delimiter, lineterminator="\n")
    writer.writerows(rows)
    return buf.getvalue().splitlines()
