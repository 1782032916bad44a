"""Visualizations: pure renderers (data + params -> uint8 RGB(A) arrays), their typed
parameter sets, one shared parameter panel per view type, and film overlays.

The view types are listed once, in ``registry.KINDS``.

Modules
- ``raster``: pixel primitives shared by every view (hex colours, integer blending,
  playhead column, a 3x5 bitmap font, colour-map lookup tables).
- ``waveform``: the pixel-exact stem waveform (``StemEnvelope``, ``stem_columns``,
  ``stem_pixel_counts``, ``render_stem_waveform``); ``static/stem_waveform.js`` is its
  exact port for the browser canvas.
- ``loudness_view``: BS.1770 momentary / short-term curves, integrated and target lines.
- ``dynamics``: short-term loudness and crest factor as a coloured heatstrip.
- ``spectral``: mel spectrogram / chromagram with section markers and the beat grid.
- ``params``: ``StemWaveformParams``, ``LoudnessParams``, ``DynamicsParams``,
  ``SpectralParams``; ``settings``: ``VisualizationSettings`` (persisted in
  ``stratum_settings.yaml``).
- ``view_kind`` / ``registry``: what a view type is (params + renderers) and the list of them.
- ``album_data``: ``AlbumViewData`` and ``render_track`` (headless).
- ``widgets`` / ``panel`` / ``showcase``: the anywidget canvas, image views,
  ``panel_for(kind)`` and the album showcase.
- ``overlay``: ``OverlaySpec`` and ``build_overlay`` to burn a view into a film.

Importing this package is cheap: ipywidgets, anywidget, librosa and matplotlib are only
imported by the modules (or functions) that need them.
"""

from __future__ import annotations
