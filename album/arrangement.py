"""Song form and the render session: where notes land in time and which stem they feed.

A :class:`Song` knows its tempo, swing, sections and chord cycle, and converts (bar, beat)
to seconds. A :class:`Session` holds one song's channel buffers (stereo float64 [2, n])
while its arrangement places notes; ``finish`` runs each channel's chain (filter sweep,
side-chain duck, sends to the stem's reverb and echo) and sums channels into the four stems.

Rendering is causal: every effect depends only on the past, so rendering the first
``seconds`` of a song gives exactly the first ``seconds`` of the full render (the test of
determinism relies on that).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from album.instruments import SungNote, sing
from album.synth import (
    convolve_stereo,
    duck_curve,
    echo,
    filt,
    limiter_gain,
    pan,
    rng_for,
    swept,
)

STEMS = ("drums", "bass", "other", "vocals")
VELOCITY = {"x": 1.0, "o": 0.7, "g": 0.35}


@dataclass(frozen=True)
class Song:
    """One track's form. ``sections`` are (name, bars) in order; ``chords`` is the cycle of
    (bass root MIDI, voicing MIDI notes) per bar; ``swing`` is where the off-beat 16th
    falls inside its eighth (0.5 straight, ~0.6 swung)."""

    id: str
    title: str
    bpm: float
    key: str
    sections: tuple[tuple[str, int], ...]
    chords: tuple[tuple[int, tuple[int, ...]], ...]
    swing: float = 0.5
    tail: float = 2.5
    gain_db: float = 0.0

    @property
    def beat(self) -> float:
        return 60.0 / self.bpm

    @property
    def bar(self) -> float:
        return 4.0 * self.beat

    @property
    def n_bars(self) -> int:
        return sum(b for _, b in self.sections)

    @property
    def duration(self) -> float:
        """Seconds: all bars plus the reverb tail."""
        return self.n_bars * self.bar + self.tail

    def at(self, bar: float, beat: float = 0.0) -> float:
        """Seconds at ``beat`` (0-based, may be fractional) of ``bar`` (0-based)."""
        return (bar * 4.0 + beat) * self.beat

    def step(self, bar: int, sixteenth: int) -> float:
        """Seconds of a 16th-note step within ``bar``, with swing on the off-beat 16ths."""
        eighth, odd = divmod(sixteenth, 2)
        return self.at(bar, eighth * 0.5 + (self.swing if odd else 0.0) * 0.5)

    def section_bars(self, name: str) -> range:
        """The bar indices of section ``name``."""
        start = 0
        for sec, bars in self.sections:
            if sec == name:
                return range(start, start + bars)
            start += bars
        raise KeyError(name)

    def section_of(self, bar: int) -> str:
        start = 0
        for sec, bars in self.sections:
            if start <= bar < start + bars:
                return sec
            start += bars
        return self.sections[-1][0]

    def section_starts(self) -> list[tuple[str, float]]:
        """(name, start seconds) of every section, in order."""
        out, bar = [], 0
        for sec, bars in self.sections:
            out.append((sec, round(self.at(bar), 3)))
            bar += bars
        return out

    def chord(self, bar: int) -> tuple[int, tuple[int, ...]]:
        return self.chords[bar % len(self.chords)]


@dataclass
class ChannelChain:
    """How a channel is processed before it joins its stem."""

    stem: str
    cutoff: np.ndarray | None = None  # low-pass sweep, float64 [n] Hz
    highpass: np.ndarray | None = None  # high-pass sweep, float64 [n] Hz
    duck: float = 0.0  # side-chain depth keyed by the session's kick hits
    reverb: float = 0.0  # send level to the stem's hall
    echo: float = 0.0  # send level to the stem's echo
    gain: float = 1.0
    ceiling: float | None = None  # peak limit after gain (tames a singer's transients)


@dataclass
class Session:
    """The buffers of one song being rendered: ``seconds`` limits the render to an excerpt."""

    song: Song
    sr: int
    seconds: float | None = None
    buffers: dict[str, np.ndarray] = field(default_factory=dict)
    chains: dict[str, ChannelChain] = field(default_factory=dict)
    kick_hits: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        full = round(self.song.duration * self.sr)
        self.n = full if self.seconds is None else min(full, round(self.seconds * self.sr))

    @property
    def end(self) -> float:
        """Seconds rendered: notes starting later are skipped."""
        return self.n / self.sr

    def rng(self, purpose: str, index: int = 0) -> np.random.Generator:
        return rng_for(self.song.id, purpose, index)

    def channel(self, name: str, stem: str, **chain: object) -> str:
        """Declare channel ``name`` feeding ``stem`` with its chain settings."""
        if stem not in STEMS:
            raise ValueError(f"unknown stem {stem!r}")
        self.chains[name] = ChannelChain(stem=stem, **chain)  # type: ignore[arg-type]
        self.buffers[name] = np.zeros((2, self.n))
        return name

    def add(
        self, name: str, t: float, sig: np.ndarray, *, gain: float = 1.0, position: float = 0.0
    ) -> None:
        """Mix ``sig`` (mono [m] or stereo [2, m]) into channel ``name`` from ``t`` seconds."""
        s = round(max(t, 0.0) * self.sr)
        if s >= self.n:
            return
        stereo = pan(sig, position) if sig.ndim == 1 else sig
        e = min(self.n, s + stereo.shape[1])
        self.buffers[name][:, s:e] += gain * stereo[:, : e - s]

    def hits(
        self,
        name: str,
        bars: Iterable[int],
        pattern: str,
        voices: list[np.ndarray],
        *,
        gain: float = 1.0,
        position: float = 0.0,
        jitter: float = 0.003,
        is_kick: bool = False,
    ) -> None:
        """Place a one-bar 16-step ``pattern`` ('x' full, 'o' medium, 'g' ghost, '.' rest)
        in every bar of ``bars``, cycling through ``voices`` (one-shot variants), with a
        little seeded timing and velocity variation."""
        steps = pattern.replace(" ", "")
        if len(steps) != 16:
            raise ValueError(f"pattern {pattern!r} needs 16 steps")
        for bar in bars:
            rng = self.rng(f"hits-{name}", bar)
            for i, ch in enumerate(steps):
                if ch not in VELOCITY:
                    continue
                t = self.song.step(bar, i) + rng.normal(0.0, jitter)
                vel = VELOCITY[ch] * rng.uniform(0.9, 1.0)
                voice = voices[(bar * 16 + i) % len(voices)]
                self.add(name, t, voice, gain=gain * vel, position=position)
                if is_kick:
                    self.kick_hits.append(t)

    def sing(
        self,
        name: str,
        bar: int,
        melody: list[tuple[float, float, float, str]],
        *,
        gain: float = 1.0,
        position: float = 0.0,
        transpose: float = 0.0,
        **voice: float,
    ) -> None:
        """Sing ``melody`` [(beat, beats, midi, vowel)] from the start of ``bar``; notes with
        gaps under half a beat join into one legato phrase."""
        beat = self.song.beat
        phrases: list[list[tuple[float, float, float, str]]] = []
        for note in sorted(melody):
            if phrases and note[0] - (phrases[-1][-1][0] + phrases[-1][-1][1]) < 0.5:
                phrases[-1].append(note)
            else:
                phrases.append([note])
        for k, phrase in enumerate(phrases):
            t0 = self.song.at(bar, phrase[0][0])
            if t0 >= self.end:
                continue
            notes = [
                SungNote((b - phrase[0][0]) * beat, d * beat, m + transpose, v)
                for b, d, m, v in phrase
            ]
            rng = self.rng(f"sing-{name}-{bar}", k)
            self.add(name, t0, sing(notes, self.sr, rng, **voice), gain=gain, position=position)

    def automation(self, points: list[tuple[float, float]], *, log: bool = True) -> np.ndarray:
        """float64 [n]: a curve through (bar, value) points (bars may be fractional)."""
        ts = np.array([self.song.at(b) for b, _ in points])
        vs = np.array([v for _, v in points], dtype=np.float64)
        t = np.arange(self.n) / self.sr
        if log:
            return np.exp(np.interp(t, ts, np.log(vs)))
        return np.interp(t, ts, vs)

    def finish(
        self, halls: dict[str, np.ndarray], echo_time: float, echo_feedback: float = 0.42
    ) -> dict[str, np.ndarray]:
        """Run every channel's chain and sum into stems: {stem: float64 [2, n]}. ``halls``
        maps each stem to its reverb response [2, L]; the echo is a ping-pong delay."""
        stems = {s: np.zeros((2, self.n)) for s in STEMS}
        rev_send = {s: np.zeros((2, self.n)) for s in STEMS}
        echo_send = {s: np.zeros((2, self.n)) for s in STEMS}
        duck = duck_curve(self.n, self.sr, self.kick_hits, depth=1.0)
        for name, buf in self.buffers.items():
            chain = self.chains[name]
            x = buf
            if chain.cutoff is not None:
                x = swept(x, "lowpass", chain.cutoff, self.sr, q=0.75, stages=2)
            if chain.highpass is not None:
                x = swept(x, "highpass", chain.highpass, self.sr, q=0.7)
            if chain.duck:
                x = x * (1.0 - chain.duck * (1.0 - duck))
            x = x * chain.gain
            if chain.ceiling is not None:
                x = x * limiter_gain(x, self.sr, ceiling=chain.ceiling, release=0.08)
            stems[chain.stem] += x
            rev_send[chain.stem] += chain.reverb * x
            echo_send[chain.stem] += chain.echo * x
        for s in STEMS:
            if np.any(echo_send[s]):
                wet = echo(echo_send[s], self.sr, delay=echo_time, feedback=echo_feedback)
                stems[s] += wet
                rev_send[s] += 0.5 * wet
            if np.any(rev_send[s]):
                stems[s] += convolve_stereo(rev_send[s], halls[s])
            stems[s] = filt(stems[s], "highpass", 20.0, self.sr)  # no DC, no sub-sonic drift
        return stems


def each_bar(song: Song, *sections: str) -> list[int]:
    """Bar indices of the named sections, in song order."""
    return [b for s in sections for b in song.section_bars(s)]


def arpeggio(
    song: Song, bars: Iterable[int], order: tuple[int, ...], *, octave: int = 12, steps: int = 16
) -> list[tuple[int, int, float]]:
    """(bar, step, midi) for a 16th-note arpeggio walking ``order`` through each bar's
    voicing (indices past the voicing wrap up an octave)."""
    out = []
    for bar in bars:
        voicing = song.chord(bar)[1]
        for i in range(steps):
            idx = order[i % len(order)]
            up, j = divmod(idx, len(voicing))
            out.append((bar, i, voicing[j] + octave * up))
    return out


Renderer = Callable[[Session], None]
