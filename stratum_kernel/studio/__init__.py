"""The studio: preset explorer (JupyterLab), Voila dashboard, preview clips, run records.

Notebooks stay thin; the widgets and their logic live here and are tested by pytest.

Modules
- ``preview``: :class:`~stratum_kernel.studio.preview.PreviewEngine` (exact frames for an
  edited preset, cached per track and parameter set) and
  :class:`~stratum_kernel.studio.preview.LatestWins` (one worker thread, newest request
  wins: a dragged slider never queues work).
- ``preset_form``: the preset's parameters as grouped widgets, generated from the
  :class:`~stratum_kernel.motion.presets.Preset` pydantic model and its bounds.
- ``timeline``: the frame slider, play/pause and the feature plot with a client-side
  playhead (also the bridge to the stem mixer's clock).
- ``explorer``: :class:`~stratum_kernel.studio.explorer.PresetExplorer` (tune, A/B, save).
- ``clip``: render a short preview clip (MP4 with sound) in a background thread.
- ``dashboard``: the Voila dashboard layout.
- ``run_record``: helpers for the papermill run record (``notebooks/render_album.ipynb``).
- ``notebook_params``: the notebooks' papermill parameters, ``STRATUM_NB_*`` fallbacks and
  the RenderConfig they resolve to.

Importing this package is cheap; ipywidgets and friends load with the modules that need them.
"""

from __future__ import annotations

__all__: list[str] = []
