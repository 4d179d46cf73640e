"""espeak-ng speech synthesis through ctypes, resampled to 16 kHz mono float32.

The shared library and its voice data come from the ``espeakng-loader`` wheel,
so no system package and no download are needed. espeak keeps global state,
so there is one engine per process (``get_engine()``); worker processes each
build their own.

Example
-------
>>> from data_prep.synthetic.espeak import get_engine
>>> wav = get_engine().synthesize("hello world", voice="en-us+m3", rate=170)
>>> wav.dtype.name, wav.ndim, 0.3 < len(wav) / 16000 < 3.0
('float32', 1, True)
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

_SYNTH_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
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
        rate = self._lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path.encode(), 0
        )
        if rate <= 0:
            raise RuntimeError(
                f"espeak_Initialize failed for data path {data_path!r}"
            )
        self.native_sample_rate = rate
        self._chunks = []
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
        if numsamples > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, (numsamples,)).copy())
        return 0

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
                   volume=100):
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

        Returns
        -------
        numpy.ndarray
            ``[samples]`` float32 at ``TARGET_SAMPLE_RATE``.
        """
        if not text.strip():
            raise ValueError("cannot synthesise empty text")
        with self._lock:
            self.set_voice(voice)
            for name, value in (("rate", rate), ("pitch", pitch),
                                ("range", pitch_range), ("volume", volume)):
                self._lib.espeak_SetParameter(_espeakPARAM[name], int(value), 0)
            self._chunks = []
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
        if not chunks:
            raise RuntimeError(f"espeak produced no audio for {text!r}")
        native = np.concatenate(chunks).astype(np.float32) / 32768.0
        return resample_poly(native, self._up, self._down).astype(np.float32)

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
