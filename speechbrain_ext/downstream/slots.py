"""Slot-filling scores for CTC outputs over slot-tagged transcripts (SF on
Timers and Such, ``data_prep.timers_and_such`` format: ``<slot> VALUE
</slot>``).

Two SUPERB scores (s3prl's ``ctc/metric.py`` defines them; written here from
their definition):

* **slot-value CER**: for every reference slot value, the hypothesis value of
  the same slot type closest in characters (the empty string if the
  hypothesis has no slot of that type); character edits summed over all
  reference values, divided by their total characters (spaces count), in %.
* **slot-type F1**: per utterance, F1 between the sets of slot types of
  hypothesis and reference (1 when both have none, 0 when only one has
  some), averaged over utterances, in %.

A decoded CTC output need not be well formed: :func:`extract_slots` reads
it leniently (an unclosed tag ends at the next tag or the end; a closing tag
without its opening tag is ignored) so that every output can be scored.

Example
-------
>>> refs = ["SET <minutes> TEN </minutes> MINUTES"]
>>> hyps = ["SET <minutes> TEN </minutes> MINUTES"]
>>> stats = SlotStats()
>>> stats.append(["u1"], hyps, refs)
>>> stats.summarize()
{'slot_value_cer': 0.0, 'slot_type_f1': 100.0}
"""
import re

from speechbrain.utils.edit_distance import count_ops, op_table

_TAG = re.compile(r"<(/?)([A-Za-z0-9_]+)>")


def extract_slots(text):
    """``[(slot, value)]`` of a (possibly malformed) slot transcript; values
    are blank-normalised word strings.

    >>> extract_slots("WAKE ME AT <alarm_hour> SEVEN </alarm_hour> <am_or_pm> A M </am_or_pm>")
    [('alarm_hour', 'SEVEN'), ('am_or_pm', 'A M')]
    >>> extract_slots("<minutes> TEN <seconds> FIVE </seconds> </hours> X")   # lenient
    [('minutes', 'TEN'), ('seconds', 'FIVE')]
    """
    slots, current, start = [], None, 0
    for match in _TAG.finditer(text):
        closing, name = match.groups()
        if current is not None and (not closing or name == current):
            slots.append((current, " ".join(text[start:match.start()].split())))
            current = None
        if not closing:
            current, start = name, match.end()
    if current is not None:
        slots.append((current, " ".join(text[start:].split())))
    return slots


def strip_tags(text):
    """The words of a slot transcript without its tags.

    >>> strip_tags("SET <minutes> TEN </minutes>MINUTES")
    'SET TEN MINUTES'
    """
    return " ".join(_TAG.sub(" ", text).split())


def char_edits(hyp, ref):
    """Character edit distance (Levenshtein) between two strings."""
    ops = count_ops(op_table(list(ref), list(hyp)))
    return ops["insertions"] + ops["deletions"] + ops["substitutions"]


def _by_type(slots):
    table = {}
    for name, value in slots:
        table.setdefault(name, []).append(value)
    return table


def slot_value_edits(hyp, ref):
    """(character edits, reference characters) of the slot values of one
    utterance (see the module docstring)."""
    hyp_values = _by_type(extract_slots(hyp))
    edits = chars = 0
    for name, value in extract_slots(ref):
        candidates = hyp_values.get(name, [""])
        edits += min(char_edits(c, value) for c in candidates)
        chars += len(value)
    return edits, chars


def slot_type_f1(hyp, ref):
    """F1 between the slot types of one hypothesis and its reference, in [0, 1].

    >>> slot_type_f1("<a> X </a> <b> Y </b>", "<a> X </a> <c> Z </c>")
    0.5
    """
    hyp_types, ref_types = set(_by_type(extract_slots(hyp))), set(_by_type(extract_slots(ref)))
    if not hyp_types and not ref_types:
        return 1.0
    common = len(hyp_types & ref_types)
    if common == 0:
        return 0.0
    precision, recall = common / len(hyp_types), common / len(ref_types)
    return 2 * precision * recall / (precision + recall)


class SlotStats:
    """Accumulates slot-value CER and slot-type F1 over batches
    (SpeechBrain ``MetricStats`` style: ``append`` then ``summarize``)."""

    def __init__(self):
        self.clear()

    def clear(self):
        self.ids, self.edits, self.chars, self.f1 = [], 0, 0, []

    def append(self, ids, hyps, refs):
        """``hyps`` / ``refs``: slot transcripts (str), one per id."""
        if not len(ids) == len(hyps) == len(refs):
            raise ValueError(f"got {len(ids)} ids, {len(hyps)} hypotheses, {len(refs)} references")
        for uid, hyp, ref in zip(ids, hyps, refs):
            edits, chars = slot_value_edits(hyp, ref)
            self.ids.append(uid)
            self.edits += edits
            self.chars += chars
            self.f1.append(slot_type_f1(hyp, ref))

    def summarize(self, field=None):
        summary = {
            "slot_value_cer": 100.0 * self.edits / self.chars if self.chars else 0.0,
            "slot_type_f1": 100.0 * sum(self.f1) / len(self.f1) if self.f1 else 0.0}
        return summary[field] if field is not None else summary
