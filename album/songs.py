"""The three songs of the bundled album: their form, harmony, melodies and arrangements.

Each song is a :class:`Song` plus a renderer that places notes into a :class:`Session`.
The sections (intro, build, peak, breakdown, outro) differ on purpose in density, filter
brightness and which parts play, so that visuals have something to follow.
"""

from __future__ import annotations

import numpy as np

from album import instruments as ins
from album.arrangement import Session, Song, arpeggio, each_bar

SECTIONS = ("intro", "build", "peak", "breakdown", "outro")


def _kit(ss: Session, **tones: float) -> dict[str, list[np.ndarray]]:
    """One-shot drum variants for a song (four of each noisy voice, seeded per song)."""
    sr = ss.sr
    return {
        "kick": [ins.kick(sr, tone=tones.get("kick", 48.0), decay=tones.get("kick_decay", 0.36))],
        "snare": [
            ins.snare(sr, ss.rng("snare", i), tone=tones.get("snare", 190.0)) for i in range(4)
        ],
        "clap": [ins.clap(sr, ss.rng("clap", i)) for i in range(4)],
        "hat": [ins.hat(sr, ss.rng("hat", i), decay=0.025) for i in range(4)],
        "open": [ins.hat(sr, ss.rng("open", i), decay=0.16, noise=0.25) for i in range(2)],
        "shaker": [ins.shaker(sr, ss.rng("shaker", i)) for i in range(4)],
        "rim": [ins.rim(sr)],
        "crash": [ins.crash(sr, ss.rng("crash"))],
    }


def _roll(
    ss: Session,
    name: str,
    bar: int,
    voices: list[np.ndarray],
    *,
    steps: int,
    gain: float,
    start_vel: float = 0.25,
) -> None:
    """A snare roll over one bar, ``steps`` evenly spaced hits swelling to full velocity."""
    for i in range(steps):
        t = ss.song.at(bar, 4.0 * i / steps)
        vel = start_vel + (1.0 - start_vel) * (i / max(steps - 1, 1)) ** 1.5
        ss.add(name, t, voices[i % len(voices)], gain=gain * vel)


def _chords(
    ss: Session,
    name: str,
    bars: list[int],
    rhythm: list[tuple[float, float]],
    *,
    voice: str,
    velocity: float = 0.7,
    strum: float = 0.012,
    voicing_for=None,
) -> None:
    """Play each bar's voicing at ``rhythm`` [(beat, beats)] with an instrument."""
    song = ss.song
    for bar in bars:
        for k, (beat, beats) in enumerate(rhythm):
            voicing = voicing_for(bar, beat) if voicing_for else song.chord(bar)[1]
            t = song.at(bar, beat)
            if t >= ss.end:
                continue
            rng = ss.rng(f"chord-{name}", bar * 16 + k)
            for j, midi in enumerate(voicing):
                vel = velocity * rng.uniform(0.85, 1.0)
                dur = beats * song.beat
                if voice == "epiano":
                    note = ins.epiano(midi, dur, ss.sr, velocity=vel)
                    pos = -0.35 + 0.7 * j / max(len(voicing) - 1, 1)
                elif voice == "stab":
                    note = ins.stab(midi, ss.sr, velocity=vel)
                    pos = -0.25 + 0.5 * j / max(len(voicing) - 1, 1)
                else:
                    note = ins.pad(midi, dur, ss.sr, rng, attack=min(0.6, dur / 3))
                    pos = 0.0
                ss.add(name, t + j * strum, note, gain=1.0 / len(voicing), position=pos)


def _bassline(
    ss: Session,
    name: str,
    bars: list[int],
    pattern: list[tuple[int, int, int]],
    *,
    cutoff=None,
    **kw: float,
) -> None:
    """Bass notes on the chord root: ``pattern`` [(16th step, length in steps, semitones)]."""
    song = ss.song
    six = song.beat / 4
    for bar in bars:
        root = song.chord(bar)[0]
        for step, length, offset in pattern:
            t = song.step(bar, step)
            if t >= ss.end:
                continue
            fc = float(cutoff[min(int(t * ss.sr), ss.n - 1)]) if cutoff is not None else 380.0
            note = ins.bass(root + offset, length * six * 0.9, ss.sr, cutoff=fc, **kw)
            ss.add(name, t, note)


def _third_below(midi: float, scale: tuple[int, ...], tonic: int) -> float:
    """The diatonic third below ``midi`` in the scale (nearest degree for chromatic notes)."""
    pcs = sorted((tonic + s) % 12 for s in scale)
    candidates = [m for m in range(int(midi) - 6, int(midi)) if m % 12 in pcs]
    return float(candidates[-2]) if len(candidates) >= 2 else midi - 3


MINOR = (0, 2, 3, 5, 7, 8, 10)


# ---------------------------------------------------------------- 1. Low Tide Choir

# fmt: off
LOW_TIDE = Song(
    id="low-tide-choir", title="Low Tide Choir", bpm=98.0, key="F# minor",
    sections=(("intro", 4), ("build", 4), ("peak", 8), ("breakdown", 4), ("outro", 4)),
    chords=((42, (57, 61, 64, 68)), (38, (57, 61, 64, 66)), (35, (57, 62, 64, 66)),
            (37, (56, 59, 61, 66))),
    swing=0.6, tail=2.0, gain_db=-3.5,
)

LOW_TIDE_VERSE = [
    (0.5, 0.5, 61, "a"), (1.0, 1.0, 66, "a"), (2.0, 0.5, 68, "e"), (2.5, 1.5, 69, "a"),
    (4.5, 0.5, 69, "o"), (5.0, 1.0, 73, "a"), (6.0, 1.0, 71, "o"), (7.0, 1.0, 69, "a"),
    (8.5, 0.5, 66, "e"), (9.0, 1.5, 69, "a"), (10.5, 0.5, 68, "e"), (11.0, 1.0, 66, "o"),
    (12.0, 2.0, 66, "a"), (14.0, 1.75, 65, "o"),
]
LOW_TIDE_CLIMB = [
    (0.5, 0.5, 69, "a"), (1.0, 1.0, 73, "a"), (2.0, 0.5, 71, "e"), (2.5, 1.5, 73, "a"),
    (4.0, 1.0, 74, "o"), (5.0, 1.0, 73, "a"), (6.0, 1.5, 69, "a"), (7.5, 0.5, 66, "e"),
    (8.0, 1.0, 71, "e"), (9.0, 1.0, 69, "a"), (10.0, 2.0, 66, "o"),
    (12.0, 1.0, 68, "a"), (13.0, 1.0, 65, "e"), (14.0, 1.75, 61, "u"),
]
LOW_TIDE_HUM = [
    (0.5, 0.5, 61, "u"), (1.0, 2.5, 66, "u"), (4.5, 0.5, 69, "u"), (5.0, 2.5, 73, "o"),
    (8.5, 0.5, 71, "u"), (9.0, 2.5, 69, "u"), (12.0, 2.0, 66, "u"), (14.0, 1.75, 65, "u"),
]
# fmt: on


def render_low_tide(ss: Session) -> None:
    """98 BPM, F# minor: a swung, half-lit ballad. Keys alone, then a brushed groove, a
    sung verse with harmony, a hummed breakdown in the reverb, and a fading outro."""
    song = ss.song
    intro, build, peak, brk, outro = (each_bar(song, s) for s in SECTIONS)
    kit = _kit(ss, kick=50.0, kick_decay=0.3, snare=205.0)
    keys_fc = ss.automation(
        [
            (0, 700),
            (4, 2200),
            (8, 4200),
            (16, 5000),
            (16.01, 1600),
            (20, 1600),
            (20.01, 4200),
            (24, 900),
        ]
    )
    ss.channel("kick", "drums", gain=0.55)
    ss.channel("snare", "drums", gain=1.4)
    ss.channel("hats", "drums", gain=0.27)
    ss.channel("perc", "drums", gain=1.0)
    ss.channel("bass", "bass", duck=0.3, gain=0.55)
    ss.channel("keys", "other", cutoff=keys_fc, reverb=0.24, duck=0.12, gain=1.1)
    ss.channel(
        "pad",
        "other",
        cutoff=ss.automation([(8, 900), (16, 2600), (20, 1400)]),
        reverb=0.36,
        gain=0.5,
    )
    ss.channel("bells", "other", echo=0.4, reverb=0.2, gain=0.16)
    ss.channel("voice", "vocals", reverb=0.26, echo=0.16, gain=1.1, ceiling=0.6)

    # drums: shaker in the intro, brushes in the build, the full swung groove at the peak
    ss.hits("hats", intro[2:], "..g...g...g...g.", kit["shaker"])
    ss.hits("kick", build, "x.........x.....", kit["kick"], gain=0.8, is_kick=True)
    ss.hits("perc", build, "....x.......x...", kit["rim"], gain=0.8, position=0.15)
    ss.hits("hats", build, "x.o.x.o.x.o.x.o.", kit["hat"])
    ss.hits("kick", peak, "x......x..x.....", kit["kick"], is_kick=True)
    ss.hits("snare", peak, "....x.......x...", kit["snare"])
    ss.hits("perc", peak, "....x.......x...", kit["clap"], gain=0.7)
    ss.hits("hats", peak, "xgxgxgxgxgxgxgxg", kit["hat"])
    ss.hits("hats", peak[1::2], "..............x.", kit["open"], gain=0.7)
    ss.hits("hats", brk[2:], "g.g.g.g.g.o.g.o.", kit["shaker"], gain=0.7)
    ss.hits("kick", outro[:2], "x.........x.....", kit["kick"], gain=0.75, is_kick=True)
    ss.hits("perc", outro[:3], "....x.......x...", kit["rim"], gain=0.6, position=0.15)
    ss.hits("hats", outro[:3], "x.o.x.o.x.o.x.o.", kit["hat"], gain=0.7)
    for bar in (peak[0], outro[0]):
        ss.add("hats", song.at(bar), kit["crash"][0], gain=0.45)

    # bass follows the roots, rounder and busier at the peak
    _bassline(
        ss,
        "bass",
        build,
        [(0, 6, 0), (7, 2, 0), (10, 5, 0)],
        cutoff=None,
        env_amount=300.0,
        resonance=0.1,
        sub=0.9,
    )
    _bassline(
        ss,
        "bass",
        peak,
        [(0, 4, 0), (4, 2, 12), (7, 2, 0), (10, 3, 7), (14, 2, 12)],
        cutoff=None,
        env_amount=600.0,
        resonance=0.25,
        sub=0.8,
    )
    _bassline(ss, "bass", outro[:2], [(0, 14, 0)], env_amount=200.0, sub=1.0)

    # harmony: keys through every section, pad for the peak and breakdown
    def sus_then_seven(bar: int, beat: float) -> tuple[int, ...]:
        voicing = song.chord(bar)[1]
        return (56, 59, 61, 65) if bar % 4 == 3 and beat >= 2 else voicing

    _chords(
        ss,
        "keys",
        intro + brk,
        [(0.0, 1.9), (2.0, 1.9)],
        voice="epiano",
        velocity=0.5,
        voicing_for=sus_then_seven,
    )
    comp = [(0.0, 1.4), (1.75, 0.5), (2.5, 1.4)]
    _chords(
        ss,
        "keys",
        build + peak + outro[:3],
        comp,
        voice="epiano",
        velocity=0.7,
        voicing_for=sus_then_seven,
    )
    _chords(ss, "keys", outro[3:], [(0.0, 4.0)], voice="epiano", velocity=0.55)
    _chords(ss, "pad", peak + brk, [(0.0, 4.0)], voice="pad", strum=0.0, voicing_for=sus_then_seven)
    for bar, step, midi in arpeggio(song, peak[4:], (0, 1, 2, 3, 4, 3, 2, 1), octave=12):
        if step % 2 == 0 and song.step(bar, step) < ss.end:
            ss.add(
                "bells",
                song.step(bar, step),
                ins.bell(midi + 12, ss.sr, velocity=0.6),
                position=0.4 * np.sin(step),
            )

    # the voice: a verse and its climb with a third below, a hum, a last long note
    voice = {"vibrato_cents": 32.0, "formant_shift": 1.0}
    ss.sing("voice", peak[0], LOW_TIDE_VERSE, **voice)
    ss.sing("voice", peak[4], LOW_TIDE_CLIMB, **voice)
    harmony = [(b, d, _third_below(m, MINOR, 6), v) for b, d, m, v in LOW_TIDE_CLIMB]
    ss.sing(
        "voice", peak[4], harmony, gain=0.45, position=-0.3, vibrato_cents=26.0, formant_shift=0.94
    )
    ss.sing("voice", brk[0], LOW_TIDE_HUM, gain=0.6, **voice)
    ss.sing("voice", outro[0], [(0.0, 3.5, 66, "a"), (4.0, 3.5, 64, "o")], gain=0.8, **voice)


# ---------------------------------------------------------------- 2. Sodium Lights

# fmt: off
SODIUM = Song(
    id="sodium-lights", title="Sodium Lights", bpm=120.0, key="A minor",
    sections=(("intro", 4), ("build", 4), ("peak", 8), ("breakdown", 4), ("outro", 4)),
    chords=((33, (60, 64, 67, 71)), (29, (57, 60, 64, 67)), (38, (57, 60, 64, 65)),
            (40, (59, 62, 64, 67))),
    swing=0.54, tail=2.0, gain_db=0.0,
)

SODIUM_HOOK = [
    (0.5, 0.5, 72, "a"), (1.0, 0.5, 71, "a"), (1.5, 1.0, 69, "o"), (3.0, 0.5, 67, "e"),
    (3.5, 1.0, 69, "a"), (4.5, 0.5, 72, "a"), (5.0, 1.0, 76, "a"), (6.0, 1.5, 72, "o"),
    (8.5, 0.5, 69, "e"), (9.0, 0.5, 72, "a"), (9.5, 1.0, 74, "a"), (11.0, 0.5, 72, "e"),
    (11.5, 1.0, 69, "o"), (12.5, 0.5, 67, "a"), (13.0, 1.0, 71, "a"), (14.0, 1.5, 64, "u"),
]
SODIUM_ANSWER = [
    *SODIUM_HOOK[:12],
    (11.5, 1.0, 69, "o"), (12.5, 0.5, 71, "a"), (13.0, 1.0, 74, "a"), (14.0, 1.75, 76, "a"),
]
SODIUM_AIR = [(0.0, 3.5, 76, "a"), (4.0, 3.5, 72, "o"), (8.0, 3.5, 74, "a"),
              (12.0, 3.75, 71, "u")]
# fmt: on


def render_sodium(ss: Session) -> None:
    """120 BPM, A minor: deep house. A filtered organ stab opens up over the build, the
    peak carries the full groove and a sung hook, the breakdown drops the kick for a pad
    and long high notes, the outro closes the filter again."""
    song = ss.song
    intro, build, peak, brk, outro = (each_bar(song, s) for s in SECTIONS)
    kit = _kit(ss, kick=46.0, kick_decay=0.34, snare=185.0)
    stab_fc = ss.automation([(0, 450), (4, 900), (8, 5200), (16, 5200), (20, 2500), (24, 500)])
    ss.channel("kick", "drums", gain=0.46)
    ss.channel("claps", "drums", gain=1.0)
    ss.channel("hats", "drums", gain=0.34)
    ss.channel("perc", "drums", gain=0.3)
    ss.channel("bass", "bass", duck=0.55, gain=0.6)
    ss.channel("stabs", "other", cutoff=stab_fc, echo=0.22, reverb=0.14, duck=0.35, gain=1.8)
    ss.channel(
        "pad",
        "other",
        cutoff=ss.automation([(16, 700), (19.5, 3500), (20, 1200)]),
        reverb=0.32,
        duck=0.2,
        gain=0.85,
    )
    ss.channel("riser", "other", reverb=0.24, gain=0.36)
    ss.channel("voice", "vocals", reverb=0.2, echo=0.22, duck=0.1, gain=0.65, ceiling=0.6)

    four = "x...x...x...x..."
    ss.hits(
        "kick", intro[2:] + build + peak + outro[:3], four, kit["kick"], is_kick=True, jitter=0.0
    )
    ss.hits("perc", intro[:2], "......x.......x.", kit["rim"], gain=0.8, position=0.3)
    ss.hits("hats", intro, "ggogggogggogggog", kit["shaker"], gain=0.6)
    ss.hits("kick", outro[3:], "x...x...........", kit["kick"], gain=0.7, is_kick=True)
    ss.hits("claps", build[2:] + peak + outro[:2], "....x.......x...", kit["clap"])
    ss.hits("hats", intro[2:] + build + outro[:3], "..x...x...x...x.", kit["hat"])
    ss.hits("hats", peak, "..x...x...x...x.", kit["open"], gain=0.8)
    ss.hits("hats", peak + brk[2:], "ggogggogggogggog", kit["shaker"], gain=0.8)
    ss.hits(
        "perc",
        peak,
        "......x..x....x.",
        [ins.conga(ss.sr, tone=230.0), ins.conga(ss.sr, tone=310.0)],
        position=-0.4,
    )
    _roll(ss, "claps", build[-1], kit["snare"], steps=16, gain=0.8)
    _roll(ss, "claps", brk[-1], kit["snare"], steps=8, gain=0.6)
    ss.add("hats", song.at(peak[0]), kit["crash"][0], gain=0.5)

    groove = [(2, 2, 0), (6, 1, 0), (7, 1, 12), (10, 2, 0), (14, 1, 7), (15, 1, 12)]
    bass_fc = ss.automation([(4, 200), (8, 520), (16, 520), (20, 300), (24, 300)])
    _bassline(
        ss,
        "bass",
        build + peak + outro[:2],
        groove,
        cutoff=bass_fc,
        env_amount=700.0,
        resonance=0.5,
        sub=0.7,
        shape="square",
    )

    stab_rhythm = [(0.5, 0.25), (1.5, 0.25), (2.5, 0.25), (3.5, 0.25)]
    _chords(
        ss,
        "stabs",
        intro + build + peak + outro,
        stab_rhythm,
        voice="stab",
        strum=0.0,
        velocity=0.8,
    )
    _chords(ss, "pad", peak[4:] + brk, [(0.0, 4.0)], voice="pad", strum=0.0)
    for bars in (build[2:], brk[2:]):
        ss.add(
            "riser",
            song.at(bars[0]),
            ins.riser(2 * song.bar, ss.sr, ss.rng("riser"), start_midi=45.0, octaves=2.0),
        )

    ss.sing("voice", peak[0], SODIUM_HOOK)
    ss.sing("voice", peak[4], SODIUM_ANSWER)
    ss.sing("voice", brk[0], SODIUM_AIR, gain=0.7, vibrato_cents=45.0)


# ---------------------------------------------------------------- 3. Glass Meridian

# fmt: off
MERIDIAN = Song(
    id="glass-meridian", title="Glass Meridian", bpm=132.0, key="C# minor",
    sections=(("intro", 4), ("build", 8), ("peak", 8), ("breakdown", 4), ("outro", 4)),
    chords=((37, (56, 61, 64, 68)), (33, (57, 61, 64, 69)), (40, (56, 59, 64, 68)),
            (35, (54, 59, 63, 66))),
    swing=0.5, tail=2.5, gain_db=0.0,
)

MERIDIAN_LEAD = [
    (0.0, 1.5, 68, "a"), (1.5, 0.5, 71, "a"), (2.0, 2.0, 73, "a"),
    (4.0, 1.5, 76, "o"), (5.5, 0.5, 73, "a"), (6.0, 2.0, 71, "a"),
    (8.0, 1.5, 71, "e"), (9.5, 0.5, 73, "a"), (10.0, 2.0, 68, "a"),
    (12.0, 1.5, 66, "o"), (13.5, 0.5, 68, "e"), (14.0, 2.0, 71, "a"),
    (16.0, 1.0, 73, "a"), (17.0, 1.0, 75, "e"), (18.0, 2.0, 76, "a"),
    (20.0, 1.5, 76, "o"), (21.5, 0.5, 73, "a"), (22.0, 2.0, 69, "a"),
    (24.0, 1.0, 71, "e"), (25.0, 1.0, 73, "a"), (26.0, 2.0, 75, "a"),
    (28.0, 1.0, 75, "o"), (29.0, 1.0, 73, "a"), (30.0, 1.75, 68, "u"),
]
MERIDIAN_SKY = [(0.0, 3.75, 73, "a"), (4.0, 3.75, 76, "o"), (8.0, 3.75, 75, "a"),
                (12.0, 3.75, 71, "u")]
# fmt: on


def render_meridian(ss: Session) -> None:
    """132 BPM, C# minor: driving trance. A filtered arp over the kick, a long build with a
    rolling bass, rising sweep and snare roll, a peak with supersaw chords and a soaring
    lead in thirds, a drumless breakdown, and a short outro."""
    song = ss.song
    intro, build, peak, brk, outro = (each_bar(song, s) for s in SECTIONS)
    kit = _kit(ss, kick=50.0, kick_decay=0.3, snare=200.0)
    arp_fc = ss.automation(
        [(0, 500), (4, 1200), (12, 5500), (20, 6000), (20.01, 1500), (24, 3500), (28, 500)]
    )
    bass_fc = ss.automation([(4, 150), (12, 700), (20, 700), (24, 500), (28, 250)])
    ss.channel("kick", "drums", gain=0.52)
    ss.channel("claps", "drums", gain=1.0)
    ss.channel("hats", "drums", gain=0.29)
    ss.channel("bass", "bass", duck=0.7, gain=0.62)
    ss.channel("arp", "other", cutoff=arp_fc, echo=0.35, reverb=0.12, duck=0.3, gain=0.34)
    ss.channel(
        "pad",
        "other",
        cutoff=ss.automation([(8, 600), (12, 2500), (20, 4000), (24, 2000), (28, 600)]),
        reverb=0.28,
        duck=0.45,
        gain=0.75,
    )
    ss.channel("riser", "other", reverb=0.24, gain=0.38)
    ss.channel("voice", "vocals", reverb=0.24, echo=0.2, duck=0.12, gain=1.0, ceiling=0.6)

    four = "x...x...x...x..."
    ss.hits(
        "kick",
        intro[2:] + build[:-1] + peak + outro[:3],
        four,
        kit["kick"],
        is_kick=True,
        jitter=0.0,
    )
    ss.hits("kick", build[-1:], "x...x...x.......", kit["kick"], is_kick=True, jitter=0.0)
    ss.hits("hats", intro + build[:4] + outro, "..x...x...x...x.", kit["hat"])
    ss.hits("hats", build[4:] + peak, "ggxgggxgggxgggxg", kit["hat"])
    ss.hits("hats", peak, "..x...x...x...x.", kit["open"], gain=0.7)
    ss.hits("claps", build[4:-2] + peak + outro[:2], "....x.......x...", kit["clap"])
    _roll(ss, "claps", build[-2], kit["snare"], steps=8, gain=0.7, start_vel=0.2)
    _roll(ss, "claps", build[-1], kit["snare"], steps=16, gain=0.9, start_vel=0.5)
    for bar in (peak[0], brk[0], outro[0]):
        ss.add("hats", song.at(bar), kit["crash"][0], gain=0.5)

    rolling = [(s, 1, 12 if s % 4 == 3 else 0) for s in range(16) if s % 4]
    _bassline(
        ss,
        "bass",
        build + peak + outro[:2],
        rolling,
        cutoff=bass_fc,
        env_amount=900.0,
        env_decay=0.05,
        resonance=0.7,
        sub=0.6,
    )

    for bar, step, midi in arpeggio(
        song, intro + build + peak + brk + outro, (0, 2, 1, 3, 2, 4, 3, 1), octave=12
    ):
        if song.step(bar, step) < ss.end:
            ss.add(
                "arp",
                song.step(bar, step),
                ins.pluck(midi + 12, ss.sr, velocity=0.75),
                position=0.2 if step % 2 else -0.2,
            )
    _chords(ss, "pad", build[4:] + peak + brk + outro[:1], [(0.0, 4.0)], voice="pad", strum=0.0)
    ss.add(
        "riser",
        song.at(build[-4]),
        ins.riser(4 * song.bar, ss.sr, ss.rng("riser"), start_midi=40.0, octaves=3.0),
    )
    ss.add(
        "riser",
        song.at(brk[-2]),
        ins.riser(2 * song.bar, ss.sr, ss.rng("riser2"), start_midi=52.0, octaves=1.5),
    )

    ss.sing("voice", peak[0], MERIDIAN_LEAD)
    harmony = [(b, d, _third_below(m, MINOR, 1), v) for b, d, m, v in MERIDIAN_LEAD]
    ss.sing(
        "voice", peak[0], harmony, gain=0.4, position=0.3, formant_shift=0.93, vibrato_cents=30.0
    )
    ss.sing("voice", brk[0], MERIDIAN_SKY, gain=0.75, vibrato_cents=42.0)


ALBUM = ((LOW_TIDE, render_low_tide), (SODIUM, render_sodium), (MERIDIAN, render_meridian))
