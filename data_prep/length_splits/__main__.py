"""``python -m data_prep.length_splits``: see :func:`data_prep.length_splits.main`."""
import sys

from data_prep.length_splits import main

sys.exit(main())
