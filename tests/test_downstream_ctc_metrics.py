"""Units of the sequence (CTC) downstream tasks: error rates (WER / CER /
PER) against an independent edit distance, the slot-filling scores against
their definition, greedy decoding against SpeechBrain's and against itself
on single utterances, the CTC loss against a brute-force sum over
alignments, the head's padding invariance and the vocabularies' clear
errors."""
import itertools
import math
import random

import pytest
import torch

from speechbrain.utils.metric_stats import ErrorRateStats

from data_prep.timers_and_such import parse_slot_transcript
from speechbrain_ext.downstream.ctc_head import CTCHead, ctc_loss
from speechbrain_ext.downstream.decoding.greedy import greedy_ctc_decode, greedy_ctc_texts
from speechbrain_ext.downstream.metrics import error_rates, scoring_units
from speechbrain_ext.downstream.slots import SlotStats, extract_slots, slot_type_f1
from speechbrain_ext.downstream.vocabulary import (CTCVocabulary, LetterVocabulary, VocabularyError,
                                                   text_to_units, units_to_text)


def levenshtein(a, b):
    """Independent edit distance: the textbook dynamic programme."""
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        previous, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (x != y))
    return row[-1]


def expected_rate(hyps, refs):
    return 100.0 * sum(levenshtein(h, r) for h, r in zip(hyps, refs)) / sum(len(r) for r in refs)


def speechbrain_rate(hyps, refs):
    stats = ErrorRateStats()
    stats.append([f"u{i}" for i in range(len(refs))], hyps, refs)
    return stats.summarize("error_rate")


def random_sentences(rng, count, alphabet="ABCDE", max_words=6):
    return [" ".join("".join(rng.choice(alphabet) for _ in range(rng.randint(1, 5)))
                     for _ in range(rng.randint(1, max_words))) for _ in range(count)]


def test_wer_cer_match_independent_edit_distance():
    rng = random.Random(0)
    refs = random_sentences(rng, 30)
    hyps = [r if k % 5 == 0 else s for k, (r, s) in enumerate(zip(refs, random_sentences(rng, 30)))]
    hyps[3] = ""  # an empty hypothesis: every reference unit is a deletion
    vocab = CTCVocabulary.letters()
    for unit in ("word", "token"):
        h = [scoring_units(t, vocab, unit) for t in hyps]
        r = [scoring_units(t, vocab, unit) for t in refs]
        assert speechbrain_rate(h, r) == pytest.approx(expected_rate(h, r))
    # hand-checked: one substituted word of four, one missing character of 7
    assert speechbrain_rate([["A", "B", "X", "D"]], [["A", "B", "C", "D"]]) == pytest.approx(25.0)
    cer = speechbrain_rate([scoring_units("AB CD", vocab, "token")],
                           [scoring_units("AB CDE", vocab, "token")])
    assert cer == pytest.approx(100 / 6)


def test_per_and_chinese_cer_units():
    phonemes = CTCVocabulary.phonemes()
    ref = scoring_units("HH AH L OW", phonemes, "token")
    hyp = scoring_units("HH EH L OW W", phonemes, "token")
    assert speechbrain_rate([hyp], [ref]) == pytest.approx(expected_rate([hyp], [ref])) == 50.0
    zh = CTCVocabulary.from_transcripts(["老张想去北京。"], "characters")
    ref = scoring_units("老张想去北京。", zh, "token")   # the full stop is not scored
    hyp = scoring_units("老王想北京", zh, "token")
    assert ref == list("老张想去北京")
    assert speechbrain_rate([hyp], [ref]) == pytest.approx(200 / 6)


def slot_value_cer_by_definition(hyps, refs):
    """SUPERB's slot-value CER written from its definition, on well-formed
    transcripts parsed by the data preparation's own parser."""
    edits = chars = 0
    for hyp, ref in zip(hyps, refs):
        hyp_slots = parse_slot_transcript(hyp)[1]
        for name, value in parse_slot_transcript(ref)[1]:
            candidates = [v for n, v in hyp_slots if n == name] or [""]
            edits += min(levenshtein(c, value) for c in candidates)
            chars += len(value)
    return 100.0 * edits / chars


def test_slot_value_error_and_slot_type_f1():
    refs = ["SET <minutes> TEN </minutes> MINUTES",
            "WAKE ME AT <alarm_hour> SEVEN </alarm_hour> <am_or_pm> A M </am_or_pm>",
            "WHAT IS <number1> TWO </number1> <operator> PLUS </operator> <number2> SIX </number2>",
            "HELLO"]
    hyps = ["SET <minutes> TIN </minutes> MINUTES",                    # 1 of 3 characters
            "WAKE ME AT <alarm_hour> SEVEN </alarm_hour> A M",         # am_or_pm missing: 3 of 3
            "WHAT IS <number1> TOO </number1> <number1> TWO </number1> PLUS <number2> SIX </number2>",
            "<minutes> HELLO </minutes>"]                               # a slot the reference lacks
    stats = SlotStats()
    stats.append(["a", "b", "c", "d"], hyps, refs)
    summary = stats.summarize()
    # by hand: edits 1 + 3 + 0 (best of TOO/TWO) + 4 (PLUS missing), characters 3+5+3+3+4+3 = 21
    assert summary["slot_value_cer"] == pytest.approx(100 * 8 / 21)
    assert summary["slot_value_cer"] == pytest.approx(slot_value_cer_by_definition(hyps, refs))
    # F1 per utterance: 1, 2/3 (P 1, R 1/2), 0.8 (P 1, R 2/3), 0 (slots only in hyp)
    assert summary["slot_type_f1"] == pytest.approx(100 * (1 + 2 / 3 + 0.8 + 0) / 4)
    assert slot_type_f1("NO SLOTS", "NONE HERE") == 1.0


def test_malformed_hypotheses_are_scored():
    # CTC output need not be well formed; every hypothesis still gets a score
    assert extract_slots("<minutes> TEN") == [("minutes", "TEN")]
    assert extract_slots("</minutes> TEN <hours>") == [("hours", "")]
    assert extract_slots("TEN</minutes><seconds>FIVE") == [("seconds", "FIVE")]
    stats = SlotStats()
    stats.append(["x"], ["<minutes> TEN"], ["<minutes> TEN </minutes>"])
    assert stats.summarize("slot_value_cer") == 0.0


def test_greedy_decoding_matches_speechbrain():
    from speechbrain.decoders.ctc import ctc_greedy_decode

    torch.manual_seed(0)
    log_probs = torch.randn(4, 30, 6).log_softmax(-1)
    frames = torch.tensor([30, 17, 1, 25])
    ours = greedy_ctc_decode(log_probs, frames, blank_index=0)
    theirs = ctc_greedy_decode(log_probs, frames.float() / 30, blank_id=0)
    assert ours == theirs
    vocab = CTCVocabulary.letters()
    assert vocab.decode_ctc([0, 8, 8, 0, 9, 27, 27, 0, 27]) == LetterVocabulary().decode_ctc(
        [0, 8, 8, 0, 9, 27, 27, 0, 27]) == "HI  "


def padded(utterances, generator):
    """``[batch, frames, tokens]`` of ``[frames_b, tokens]`` utterances, the
    padding filled with scores that would win every argmax."""
    frames = max(u.shape[0] for u in utterances)
    batch = 10 + torch.rand(len(utterances), frames, utterances[0].shape[1], generator=generator)
    for b, u in enumerate(utterances):
        batch[b, :u.shape[0]] = u
    return batch, torch.tensor([u.shape[0] for u in utterances])


@pytest.mark.parametrize("kind", ["letters", "phonemes", "characters", "slot_characters"])
def test_greedy_decoding_of_a_padded_batch_is_per_utterance_decoding(kind):
    generator = torch.Generator().manual_seed(3)
    texts = ["SET <minutes> TEN </minutes>", "老张想去北京", "HH AH L OW"]
    vocab = CTCVocabulary.build(kind, texts)
    utterances = [(torch.randn(n, len(vocab), generator=generator) * 3).log_softmax(-1)
                  for n in (23, 1, 40, 7)]
    log_probs, lengths = padded(utterances, generator)
    alone = [greedy_ctc_decode(u[None], [u.shape[0]], vocab.blank_index)[0] for u in utterances]
    assert greedy_ctc_decode(log_probs, lengths, vocab.blank_index) == alone
    assert greedy_ctc_decode(log_probs, lengths.tolist(), vocab.blank_index) == alone
    # the texts are the vocabulary's reading of each frame path
    assert greedy_ctc_texts(log_probs, lengths, vocab) == [
        vocab.decode_ctc(u.argmax(-1)) for u in utterances]


def test_error_rates_match_speechbrain_accumulated_counts():
    """``metrics.error_rates`` (on ``ErrorRateStats``) gives the numbers of
    SpeechBrain's ``accumulatable_wer_stats``, which it replaces."""
    from speechbrain.utils.edit_distance import accumulatable_wer_stats

    rng = random.Random(4)
    refs = random_sentences(rng, 25, alphabet="AB' ")
    hyps = random_sentences(rng, 25, alphabet="AB' ")
    hyps[0], refs[1] = "", "   "  # an empty hypothesis, a reference with no word
    rates = error_rates(refs, hyps)
    words = accumulatable_wer_stats([r.split() for r in refs], [h.split() for h in hyps])
    chars = accumulatable_wer_stats([list(r) for r in refs], [list(h) for h in hyps])
    assert rates == {"WER": float(words["WER"]), "CER": float(chars["WER"])}
    nothing = error_rates([" "], ["A"])
    assert math.isnan(nothing["WER"]) and nothing["CER"] == 100.0
    with pytest.raises(ValueError, match="2 references but 1 hypotheses"):
        error_rates(["A", "B"], ["A"])


def test_ctc_loss_matches_brute_force_sum_over_alignments():
    torch.manual_seed(1)
    frames, tokens = 5, 3
    log_probs = torch.randn(1, frames, tokens).log_softmax(-1)
    target = [1, 2, 2]
    # every frame path whose collapse (merge repeats, drop blanks) is the target
    total = 0.0
    for path in itertools.product(range(tokens), repeat=frames):
        collapsed = [k for i, k in enumerate(path) if k != 0 and (i == 0 or path[i - 1] != k)]
        if collapsed == target:
            total += math.exp(sum(log_probs[0, t, k].item() for t, k in enumerate(path)))
    loss = ctc_loss(log_probs, torch.tensor([target]), torch.tensor([frames]), torch.tensor([3]))
    assert loss.item() == pytest.approx(-math.log(total) / len(target), rel=1e-5)
    # an utterance too short for its target adds 0 instead of inf
    short = ctc_loss(log_probs, torch.tensor([target]), torch.tensor([2]), torch.tensor([3]))
    assert short.item() == 0.0


@pytest.mark.parametrize("rnn_layers,rnn_projection", [(0, False), (2, False), (2, True)])
def test_head_ignores_padding(rnn_layers, rnn_projection):
    torch.manual_seed(0)
    head = CTCHead(12, 7, project_dim=10, rnn_layers=rnn_layers, rnn_size=8,
                   rnn_projection=rnn_projection).eval()
    short = torch.randn(1, 9, 12)
    padded = torch.cat([short, torch.randn(1, 6, 12)], dim=1)
    batch = torch.cat([padded, torch.randn(1, 15, 12)])
    out = head(batch, torch.tensor([9, 15]))
    alone = head(short, torch.tensor([9]))
    assert out.shape == (2, 15, 7)
    assert torch.allclose(out[0, :9], alone[0], atol=1e-5)
    # gradients reach the projection through the LSTMs
    head.train()
    head(batch, torch.tensor([9, 15])).sum().backward()
    assert head.projection.weight.grad.abs().sum() > 0


def test_vocabularies():
    letters = CTCVocabulary.letters()
    assert letters.labels == list(LetterVocabulary().symbols)
    assert letters.encode("it's") == LetterVocabulary().encode("it's")
    with pytest.raises(VocabularyError, match=r"utterance 19-0: character '1' .* 29-symbol letter"):
        letters.encode("ROOM 1", utterance_id="19-0")
    with pytest.raises(VocabularyError, match="empty transcript"):
        CTCVocabulary.phonemes().encode("  ", utterance_id="u")
    with pytest.raises(VocabularyError, match=r"\['QQ'\]"):
        CTCVocabulary.phonemes().encode("HH QQ")
    slots = CTCVocabulary.from_transcripts(["SET <minutes> TEN </minutes>"], "slot_characters")
    assert "<minutes>" in slots.labels and "</minutes>" in slots.labels
    assert slots == CTCVocabulary.from_transcripts(["<minutes> TEN </minutes> SET"], "slot_characters")
    rows = [{"ID": "ok", "t": "SET TEN"}, {"ID": "bad", "t": "SET <hours> TEN </hours>"}]
    with pytest.raises(VocabularyError, match=r"(?s)dev.csv: 1 utterance.*bad: \['<hours>', '</hours>'\]"):
        slots.check_labels(rows, "t", "dev.csv")
    for text, kind in (("SET <minutes> TEN </minutes> MINUTES", "slot_characters"),
                       ("HH AH L OW", "phonemes"), ("IT'S OK", "letters")):
        assert units_to_text(text_to_units(text, kind), kind) == text


def test_letter_vocabulary_is_the_letters_kind(tmp_path):
    """One letter vocabulary: the ASR task's is the fine-tuning recipe's,
    saved like every other kind (same ``label_encoder.txt``)."""
    letters = CTCVocabulary.build("letters")
    assert isinstance(letters, LetterVocabulary) and letters == LetterVocabulary()
    assert letters != CTCVocabulary(LetterVocabulary().symbols[1:], "characters")
    plain = CTCVocabulary(LetterVocabulary().symbols[1:], "letters")
    letters.save(tmp_path / "letters.txt")
    plain.save(tmp_path / "plain.txt")
    assert (tmp_path / "letters.txt").read_text() == (tmp_path / "plain.txt").read_text()
    LetterVocabulary().check_saved(tmp_path / "plain.txt")
    for text in ("it's  ok", "HELLO WORLD"):
        assert letters.encode(text) == plain.encode(text)
        assert letters.units(text) == list(LetterVocabulary.normalize(text))
    with pytest.raises(VocabularyError, match="outside the 40-token"):
        CTCVocabulary.phonemes().decode([40])


def test_saved_vocabulary_mismatch_is_an_error(tmp_path):
    vocab = CTCVocabulary.from_transcripts(["ABC"], "characters")
    vocab.save(tmp_path / "label_encoder.txt")
    vocab.check_saved(tmp_path / "label_encoder.txt")
    with pytest.raises(VocabularyError, match="differs"):
        CTCVocabulary.from_transcripts(["ABD"], "characters").check_saved(tmp_path / "label_encoder.txt")


def test_head_loss_and_decoding_learn_a_toy_task():
    """Head, loss, vocabulary indices and greedy decoding wired together:
    a linear head learns to read token sequences from features that are
    noisy token embeddings (3 frames per token, a silence frame between)."""
    torch.manual_seed(0)
    vocab = CTCVocabulary.phonemes()
    words = [["HH", "AH", "L", "OW"], ["W", "ER", "L", "D"], ["S", "T", "AA", "P"], ["Y", "EH", "S"]]
    embed = torch.randn(len(vocab), 16)
    feats, targets = [], []
    for word in words:
        ids = vocab.encode(" ".join(word))
        frames = [i for t in ids for i in (t, t, t, vocab.blank_index)]
        feats.append(embed[frames] + 0.3 * torch.randn(len(frames), 16))
        targets.append(torch.tensor(ids))
    frame_lengths = torch.tensor([len(f) for f in feats])
    feats = torch.nn.utils.rnn.pad_sequence(feats, batch_first=True)
    target_lengths = torch.tensor([len(t) for t in targets])
    targets = torch.nn.utils.rnn.pad_sequence(targets, batch_first=True)
    head = CTCHead(16, len(vocab), project_dim=32, rnn_layers=0)
    opt = torch.optim.Adam(head.parameters(), lr=1e-2)
    for _ in range(80):
        opt.zero_grad()
        loss = ctc_loss(head(feats, frame_lengths), targets, frame_lengths, target_lengths)
        loss.backward()
        opt.step()
    paths = greedy_ctc_decode(head(feats, frame_lengths), frame_lengths, vocab.blank_index)
    assert [vocab.decode_units(p) for p in paths] == words
    assert loss.item() < 0.1


def test_audio_at_another_rate_is_resampled_to_16k():
    """Common Voice's 48 kHz clips reach the upstream at 16 kHz."""
    from types import SimpleNamespace

    from speechbrain_ext.downstream.ctc_brain import CTCDownstreamBrain

    class Recorder(torch.nn.Module):
        def forward(self, wav, wav_lens, ids=None):
            self.shape, self.ids = tuple(wav.shape), ids
            return wav[..., None], wav_lens

    vocab = CTCVocabulary.from_transcripts(["AB"], "characters")
    upstream = Recorder()
    brain = CTCDownstreamBrain(vocab=vocab, modules={"upstream": upstream, "head": torch.nn.Identity()},
                               hparams={"source_sample_rate": 48000}, run_opts={"device": "cpu"})
    tone = torch.sin(torch.arange(48000) * 2 * math.pi * 440 / 48000)
    batch = SimpleNamespace(sig=(torch.stack([tone, tone]), torch.tensor([1.0, 0.5])), id=["a", "b"])
    wav, _ = brain.upstream_features(batch)
    assert upstream.shape == (2, 16000) and upstream.ids == ["a", "b"]
    expected = torch.sin(torch.arange(16000) * 2 * math.pi * 440 / 16000)
    assert torch.allclose(wav[0, 2000:14000, 0], expected[2000:14000], atol=1e-2)


def test_feature_augmentation_only_while_training():
    from types import SimpleNamespace

    import speechbrain as sb

    from speechbrain_ext.downstream.ctc_brain import CTCDownstreamBrain

    class Features(torch.nn.Module):
        def forward(self, wav, wav_lens, ids=None):
            return wav[..., None].clone(), wav_lens

    class Spy(torch.nn.Module):
        def forward(self, feats, frames):
            self.feats = feats
            return feats

    head = Spy()
    brain = CTCDownstreamBrain(
        vocab=CTCVocabulary.letters(), modules={"upstream": Features(), "head": head},
        hparams={"feature_augment": [lambda x: x.mul_(0.0)]}, run_opts={"device": "cpu"})
    batch = SimpleNamespace(sig=(torch.ones(2, 10), torch.tensor([1.0, 0.5])), id=["a", "b"],
                            to=lambda device: batch)
    _, frames = brain.compute_forward(batch, sb.Stage.VALID)
    assert head.feats.abs().sum() == 20 and frames.tolist() == [10, 5]
    brain.compute_forward(batch, sb.Stage.TRAIN)
    assert head.feats.abs().sum() == 0
    assert batch.sig[0].abs().sum() == 20  # the batch itself is left alone
