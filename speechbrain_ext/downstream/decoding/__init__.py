"""Decoding of CTC letter outputs: n-gram word LMs (``ngram``), and
(``lm_decoding``) a lexicon-free beam search without an LM beside lexicon
beam search with an LM plus the LM-weight / word-insertion grid; the greedy
decoder is ``greedy``."""
