"""espeak-ng speech synthesis through ctypes, resampled to 16 kHz mono float32.

The shared library and its voice data come from the ``espeakng-loader`` wheel,
so no system package and no download are needed. espeak keeps global state,
so there is one engine per process (``get_engine()``); worker processes each
build their own.

With ``return_events=True`` the engine also returns espeak's events, one
``(kind, name, sample)`` tuple each in the order espeak emits them: ``kind``
is ``"sentence"``, ``"word"`` (``name``: the word as written in the text),
``"phoneme"`` (``name``: espeak's mnemonic with stress marks, ``"'oU"``;
pauses start with ``_``) or ``"end"`` (end of a clause); ``sample`` is the
event's position in the returned 16 kHz waveform,
``round(native_sample * 16000 / native_rate)``.

Example
-------
>>> from data_prep.synthetic.espeak import get_engine
>>> wav = get_engine().synthesize("hello world", voice="en-us+m3", rate=170)
>>> wav.dtype.name, wav.ndim, 0.3 < len(wav) / 16000 < 3.0
('float32', 1, True)
>>> wav, events = get_engine().synthesize("hello", voice="en-us+m3",
...                                       return_events=True)
>>> [name for kind, name, _ in events if kind == "phoneme"]
['h', '@', 'l', "'oU", '_:', '_']
>>> events[-1][0], events[-1][2] <= len(wav)
('end', True)
"""
import ctypes
import os
import threading
from math import gcd

import numpy as np
from scipy.signal import resample_poly

TARGET_SAMPLE_RATE = 16000

# espeak_ng API constants (speak_lib.h)
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_espeakCHARS_UTF8 = 1
_espeakPHONEMES_IPA = 0x02
_espeakPARAM = {"rate": 1, "volume": 2, "pitch": 3, "range": 4}
_EE_OK = 0
# espeak_Initialize option: report a PHONEME event for every phoneme spoken
_espeakINITIALIZE_PHONEME_EVENTS = 0x0001
# espeak_EVENT_TYPE values we pass on (LIST_TERMINATOR = 0 ends an array;
# MARK, PLAY, MSG_TERMINATED and SAMPLERATE are dropped)
_EVENT_KINDS = {1: "word", 2: "sentence", 5: "end", 7: "phoneme"}
_EVENT_WORD, _EVENT_PHONEME = 1, 7


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p),
                ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    """``espeak_EVENT`` of speak_lib.h."""

    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint),
                ("text_position", ctypes.c_int), ("length", ctypes.c_int),
                ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", _EventId)]


_SYNTH_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
    ctypes.POINTER(_Event),
)


class UnknownVoiceError(ValueError):
    """Raised for a voice name that espeak-ng does not know."""


class EspeakEngine:
    """A process-local espeak-ng synthesiser.

    Arguments
    ---------
    library_path, data_path : str, optional
        Default to the files shipped by ``espeakng-loader``.
    """

    def __init__(self, library_path=None, data_path=None):
        import espeakng_loader

        library_path = library_path or espeakng_loader.get_library_path()
        data_path = data_path or espeakng_loader.get_data_path()
        self._lib = ctypes.CDLL(library_path)
        self._lib.espeak_Initialize.restype = ctypes.c_int
        self._lib.espeak_Initialize.argtypes = [
            ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int
        ]
        # Phoneme events only add markers to espeak's command queue: every
        # corpus's audio is bit-identical to the one made without them.
        rate = self._lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path.encode(),
            _espeakINITIALIZE_PHONEME_EVENTS,
        )
        if rate <= 0:
            raise RuntimeError(
                f"espeak_Initialize failed for data path {data_path!r}"
            )
        self.native_sample_rate = rate
        self._chunks = []
        self._events = []  # (type, native sample, phoneme name or word span)
        # Keep a reference to the callback so it is not garbage collected.
        self._callback = _SYNTH_CALLBACK(self._collect)
        self._lib.espeak_SetSynthCallback(self._callback)
        self._lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        self._lib.espeak_Synth.argtypes = [
            ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
            ctypes.c_uint, ctypes.c_uint, ctypes.POINTER(ctypes.c_uint),
            ctypes.c_void_p,
        ]
        self._lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
        self._lib.espeak_TextToPhonemes.argtypes = [
            ctypes.POINTER(ctypes.c_char_p), ctypes.c_int, ctypes.c_int
        ]
        # espeak's wave generator draws from C rand(); reseeding it before
        # every utterance makes the audio independent of what came before.
        self._libc = ctypes.CDLL(None)
        self._lock = threading.Lock()
        self._voice = None
        g = gcd(TARGET_SAMPLE_RATE, rate)
        self._up, self._down = TARGET_SAMPLE_RATE // g, rate // g

    def _collect(self, wav, numsamples, events):
        if events:
            i = 0
            while events[i].type != 0:
                ev = events[i]
                if ev.type == _EVENT_PHONEME:
                    self._events.append((ev.type, ev.sample, ev.id.string))
                elif ev.type in _EVENT_KINDS:
                    self._events.append(
                        (ev.type, ev.sample, (ev.text_position, ev.length)))
                i += 1
        if numsamples > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, (numsamples,)).copy())
        return 0

    def _convert_events(self, raw, text):
        """``[(kind, name, sample at 16 kHz)]`` from the callback's records."""
        scale = TARGET_SAMPLE_RATE / self.native_sample_rate
        events = []
        for etype, sample, detail in raw:
            if etype == _EVENT_PHONEME:
                name = detail.decode("utf-8", "replace")
            elif etype == _EVENT_WORD:  # text_position counts from 1
                # the text's word there (espeak's length stops at an
                # apostrophe: DIDN'T has length 4)
                start, _ = detail
                name = (text[start - 1:].split() or [""])[0]
            else:
                name = ""
            events.append((_EVENT_KINDS[etype], name, int(round(sample * scale))))
        return events

    def set_voice(self, voice):
        """Select a voice such as ``"en-us+f3"`` or ``"cmn"``."""
        if voice != self._voice:
            if self._lib.espeak_SetVoiceByName(voice.encode()) != _EE_OK:
                raise UnknownVoiceError(
                    f"espeak-ng has no voice {voice!r}; expected a language "
                    "such as 'en-us' or 'cmn', optionally with a variant "
                    "such as '+f3' or '+m1'"
                )
            self._voice = voice

    def synthesize(self, text, voice="en-us", rate=175, pitch=50, pitch_range=50,
                   volume=100, return_events=False):
        """Speak ``text`` and return a float32 waveform in [-1, 1] at 16 kHz.

        Arguments
        ---------
        text : str
            UTF-8 text.
        voice : str
            espeak voice name with optional variant (``"en-us+f3"``).
        rate : int
            Words per minute (80..450).
        pitch, pitch_range : int
            Base pitch and pitch range, 0..100.
        volume : int
            Amplitude, 0..200.
        return_events : bool
            Also return espeak's events (see the module docstring).

        Returns
        -------
        numpy.ndarray
            ``[samples]`` float32 at ``TARGET_SAMPLE_RATE``; with
            ``return_events`` a pair ``(wav, [(kind, name, sample), ...])``.
        """
        if not text.strip():
            raise ValueError("cannot synthesise empty text")
        with self._lock:
            self.set_voice(voice)
            for name, value in (("rate", rate), ("pitch", pitch),
                                ("range", pitch_range), ("volume", volume)):
                self._lib.espeak_SetParameter(_espeakPARAM[name], int(value), 0)
            self._chunks, self._events = [], []
            self._libc.srand(0)
            self._libc.srandom(0)
            data = text.encode("utf-8") + b"\0"
            err = self._lib.espeak_Synth(
                data, len(data), 0, 0, 0, _espeakCHARS_UTF8, None, None
            )
            self._lib.espeak_Synchronize()
            if err != _EE_OK:
                raise RuntimeError(f"espeak_Synth failed ({err}) on {text!r}")
            chunks, self._chunks = self._chunks, []
            raw_events, self._events = self._events, []
        if not chunks:
            raise RuntimeError(f"espeak produced no audio for {text!r}")
        native = np.concatenate(chunks).astype(np.float32) / 32768.0
        wav = resample_poly(native, self._up, self._down).astype(np.float32)
        if return_events:
            return wav, self._convert_events(raw_events, text)
        return wav

    def phonemes(self, text, voice="en-us", ipa=False, separator=None):
        """Return espeak's phoneme string for ``text`` (mnemonics or IPA),
        with ``separator`` (one character) between phonemes if given."""
        with self._lock:
            self.set_voice(voice)
            buf = ctypes.c_char_p(text.encode("utf-8"))
            ptr = ctypes.pointer(buf)
            mode = _espeakPHONEMES_IPA if ipa else 0
            if separator:
                mode |= ord(separator) << 8
            out = []
            while buf.value:
                res = self._lib.espeak_TextToPhonemes(ptr, _espeakCHARS_UTF8, mode)
                if res:
                    out.append(res.decode("utf-8"))
            return " ".join(s.strip() for s in out if s.strip())


_ENGINE = None
_ENGINE_PID = None


def get_engine():
    """Return this process's engine, creating it on first use (fork-safe)."""
    global _ENGINE, _ENGINE_PID
    if _ENGINE is None or _ENGINE_PID != os.getpid():
        _ENGINE = EspeakEngine()
        _ENGINE_PID = os.getpid()
    return _ENGINE
