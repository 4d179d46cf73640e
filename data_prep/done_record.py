"""Skip-if-done: which outputs of a preparation are up to date.

:class:`DoneRecord` is a small JSON file in ``save_folder`` that records,
for every output (e.g. one CSV per split), the options it was made with. A
re-run with the same options skips that output; a re-run with different
options re-prepares it. ``skip_prep=True`` (the SpeechBrain convention)
skips the preparation entirely.
"""
import json
from pathlib import Path

from .manifests import atomic_write_text


def _normalise(options):
    """JSON round trip, so tuples/lists and Paths/strings compare equal."""
    return json.loads(json.dumps(options, sort_keys=True, default=str))


class DoneRecord:
    """Remembers which outputs of a preparation are done, and with which
    options, in ``save_folder/<name>_prep_options.json``.

    Each output is keyed separately (e.g. one key per split), so preparing
    ``dev-clean`` after ``train-clean-100`` does not redo the latter.

    >>> import tempfile, os
    >>> folder = tempfile.mkdtemp()
    >>> csv_file = os.path.join(folder, "dev.csv")
    >>> record = DoneRecord(folder, "toy")
    >>> options = {"data_folder": "/data", "sample_rate": 16000}
    >>> record.is_done("dev", options, [csv_file])
    False
    >>> open(csv_file, "w").close()
    >>> record.mark_done("dev", options)
    >>> DoneRecord(folder, "toy").is_done("dev", options, [csv_file])
    True
    >>> record.is_done("dev", {**options, "sample_rate": 8000}, [csv_file])
    False
    """

    def __init__(self, save_folder, name):
        self.path = Path(save_folder) / f"{name}_prep_options.json"
        self._entries = self._load()

    def _load(self):
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def is_done(self, key, options, outputs=()):
        """True if ``key`` was prepared with ``options`` and every file in
        ``outputs`` still exists."""
        return (self._entries.get(key) == _normalise(options)
                and all(Path(o).is_file() for o in outputs))

    def forget(self, keys):
        """Mark ``keys`` as not done (call before rewriting their outputs, so
        an interrupted run is never mistaken for a finished one)."""
        if any(k in self._entries for k in keys):
            for key in keys:
                self._entries.pop(key, None)
            self._save()

    def mark_done(self, key, options):
        self._entries[key] = _normalise(options)
        self._save()

    def _save(self):
        atomic_write_text(self.path, json.dumps(self._entries, indent=1, sort_keys=True) + "\n")

