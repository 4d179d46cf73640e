"""Decoding of CTC letter outputs: n-gram word LMs (``ngram``) and lexicon
beam search with an LM plus the LM-weight / word-insertion grid
(``lm_decoding``)."""
