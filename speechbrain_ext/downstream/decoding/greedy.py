"""Best-path (greedy) CTC decoding: per frame the most likely token, repeats
merged, blanks dropped, over each utterance's valid frames only.

The one greedy decoder of the package: the CTC downstream tasks
(``downstream.ctc_brain``), the fine-tuning recipe and the greedy baseline
of the LM decoding (``lm_decoding.greedy_decode``, words single-spaced) all
call it. Decoding a padded batch gives what decoding each utterance alone
gives (the padding frames are never read).

Example
-------
>>> import torch
>>> from speechbrain_ext.downstream.vocabulary import CTCVocabulary
>>> vocab = CTCVocabulary.phonemes()
>>> path = [vocab.index[p] if p != "-" else 0 for p in "HH HH - AH L L - L OW".split()]
>>> log_probs = torch.full((2, 12, len(vocab)), -10.0)
>>> log_probs[0, torch.arange(len(path)), torch.tensor(path)] = 0.0
>>> log_probs[1, :, vocab.index["OW"]] = 0.0
>>> greedy_ctc_decode(log_probs, torch.tensor([9, 3]), vocab.blank_index)
[[16, 3, 21, 21, 25], [25]]
>>> greedy_ctc_texts(log_probs, [9, 3], vocab)
['HH AH L L OW', 'OW']
"""
from speechbrain_ext.downstream.vocabulary import collapse_repeats


def greedy_ctc_decode(log_probs, lengths, blank_index=0):
    """Token ids of the best CTC path of each utterance.

    Arguments
    ---------
    log_probs : torch.Tensor
        ``[batch, frames, tokens]`` scores (any monotone transform of the
        posteriors), padded after each utterance's ``lengths`` frames.
    lengths : torch.Tensor or sequence of int
        ``[batch]`` valid frames of each utterance.
    blank_index : int

    Returns
    -------
    list of list of int: per utterance, the argmax path with repeats merged
    and blanks dropped.

    >>> import torch
    >>> scores = torch.tensor([[[0., 1.], [0., 1.], [1., 0.], [0., 1.], [0., 1.]]])
    >>> greedy_ctc_decode(scores, torch.tensor([5]))
    [[1, 1]]
    >>> greedy_ctc_decode(scores, [2])
    [[1]]
    """
    best = log_probs.argmax(dim=-1).cpu()
    return [[i for i in collapse_repeats(best[b, :int(n)].tolist()) if i != blank_index]
            for b, n in enumerate(lengths)]


def greedy_ctc_texts(log_probs, lengths, vocabulary):
    """Texts of the best CTC paths (``vocabulary.decode`` of
    :func:`greedy_ctc_decode`): ``log_probs`` ``[batch, frames, tokens]``,
    ``lengths`` ``[batch]`` frames -> list of str."""
    return [vocabulary.decode(ids)
            for ids in greedy_ctc_decode(log_probs, lengths, vocabulary.blank_index)]
