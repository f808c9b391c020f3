"""Short success and failure cues, generated (no bundled audio, so no licence to track).

Success: two rising notes (E6 then A6, like a transit gate's "pi-pi"). Failure: a low
double buzz. Each is 16-bit mono PCM in a WAV container, so ``pygame.mixer.Sound(file=BytesIO(...))``
plays it and a test can measure it with the stdlib ``wave`` module.
"""

from __future__ import annotations

import io
import math
import struct
import wave

RATE = 22_050


def _tone(freq: float, ms: int, volume: float, square: bool = False) -> list[int]:
    # Made at every start of the kiosk (cold start, #16): the loop is kept tight, and each sample is computed
    # with the same float operations in the same order as the plain formula, so the bytes do not change:
    # int(32767 * volume * env * sin(2 * pi * freq * i / RATE)), env rising and falling over 8 ms fades.
    n = RATE * ms // 1000
    fade = max(1, RATE * 8 // 1000)  # 8 ms fades: no clicks
    sin, w, amp = math.sin, 2 * math.pi * freq, 32767 * volume
    if square:
        wave = [amp if sin(w * i / RATE) >= 0 else -amp for i in range(n)]
    else:
        wave = [amp * sin(w * i / RATE) for i in range(n)]
    out = [int(x) for x in wave]  # env is 1.0 between the fades, and amp * 1.0 * s == amp * s exactly
    for i in (*range(min(fade, n)), *range(max(0, n - fade), n)):
        env = min(1.0, i / fade, (n - 1 - i) / fade)
        s = sin(w * i / RATE)
        if square:
            s = 1.0 if s >= 0 else -1.0
        out[i] = int(amp * env * s)
    return out


def _silence(ms: int) -> list[int]:
    return [0] * (RATE * ms // 1000)


def _wav(samples: list[int]) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(struct.pack(f"<{len(samples)}h", *samples))
    return buf.getvalue()


def success_wav() -> bytes:
    return _wav(_tone(1318.5, 90, 0.5) + _silence(30) + _tone(1760.0, 140, 0.5))


def failure_wav() -> bytes:
    return _wav(_tone(220.0, 160, 0.35, square=True) + _silence(60) + _tone(196.0, 220, 0.35, square=True))


def detect_wav() -> bytes:
    """One short high "pi" the moment a card is seen (before the thank-you's two notes)."""
    return _wav(_tone(2093.0, 70, 0.45))
