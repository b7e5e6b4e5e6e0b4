"""What a notebook of the series runs on: the bundled sample with its truth, or a microscopist's own file.

Every notebook opens its ``DATA`` with :func:`open_data` in its first cell.  The
result says, once, what the notebook can do with it:

* **truth** -- the bundled simulated movie has its clean ground truth, and so has
  any simulated movie written with a ``<name>_truth.<ext>`` file beside it.  A real
  file has none: sections that need truth (PSNR, SSIM, column recovery against the
  true columns) say why and step aside; scores are the no-reference ones (uMSE/uPSNR
  with valid gaps, contrast, spectra).  Nothing is ever compared with the bundled
  sample's truth unless ``DATA`` *is* the sample.
* **counts** -- Poisson sections need electron counts.  Data in detector units are
  converted with :func:`temnb.to_counts` (gain and offset estimated from the data,
  the conversion stated); where that fails, the Poisson sections are skipped with
  the reason.
* **frames** -- each notebook needs a number of frames (:data:`MIN_FRAMES`); a
  shorter movie stops in the first cell with a :class:`TooFewFramesError` that says
  how many, and which notebooks work on what the file has.

Relative paths are read from the current folder (``temnb run`` makes them absolute
from the folder the command was typed in before the notebooks start).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

from ..core.errors import DataShapeError, TemnbError, TemnbWarning, TooFewFramesError

__all__ = ["MIN_FRAMES", "MIN_SIZE", "NotebookData", "open_data", "is_bundled_sample", "truth_path_for"]

# The fewest frames each notebook of the series needs, and why (README's table is checked against it).
MIN_FRAMES = {
    "00_welcome": (1, "one frame is shown; a movie is averaged"),
    "01_loading_k2_k3_data": (1, "loading, calibration and dose work on one frame"),
    "02_poisson_statistics": (1, "one frame gives the spatial statistics; 2 or more add the temporal ones"),
    "03_classic_filters": (1, "the 2-D filters work frame by frame; the 3-D ones need 3 frames"),
    "04_simulating_training_data": (1, "DATA only suggests the pixel size and dose to simulate"),
    "05_supervised_unet": (1, "the U-Net denoises frame by frame"),
    "06_surface_structure": (1, "columns are found frame by frame"),
    "07_unsupervised_video_udvd": (5, "UDVD sees 5 frames at once (WINDOW) and trains on the movie itself"),
    "08_blind_spot_wcvd": (5, "UDVD, compared here, sees 5 frames at once (WCVD 3); both train on the movie itself"),
    "09_evaluating_without_ground_truth": (3, "uPSNR compares a frame with its neighbours: 3 frames at gap 1"),
    "10_effective_filters": (1, "a network's effective filter is found at a pixel of one frame"),
    "11_likelihood_maps": (1, "the likelihood test compares one denoised frame with its counts"),
}
_SIMULATES_ITS_OWN = {"04_simulating_training_data"}
# The smallest frame side (px) each notebook works with (networks need room for their patches).
MIN_SIZE = {"05_supervised_unet": 16, "07_unsupervised_video_udvd": 16, "08_blind_spot_wcvd": 16}


def _key(notebook: str) -> str:
    matches = [k for k in MIN_FRAMES if k == notebook or k.startswith(f"{notebook}_") or k.split("_", 1)[1] == notebook]
    if len(matches) != 1:
        raise KeyError(f"no notebook {notebook!r} in the series ({', '.join(MIN_FRAMES)})")
    return matches[0]


def notebooks_for(n_frames: int) -> list[str]:
    """The notebooks of the series that work on a movie of *n_frames* frames."""
    return [k for k, (n, _) in MIN_FRAMES.items() if n <= n_frames]


def is_bundled_sample(data) -> bool:
    """True when *data* (a DATA value or path) is the bundled simulated movie."""
    if str(data) in ("sample", "movie"):
        return True
    from ..io import bundled

    try:
        return Path(data).resolve() == bundled.sample_path("movie").resolve()
    except (TemnbError, OSError, TypeError):
        return False


def truth_path_for(path) -> Path | None:
    """``<stem>_truth<suffix>`` beside a simulated movie, when it exists (the sample's layout)."""
    try:
        path = Path(path)
    except TypeError:
        return None
    candidate = path.with_name(f"{path.stem}_truth{path.suffix}")
    return candidate if path.suffix and candidate.is_file() else None


@dataclass
class NotebookData:
    """A notebook's movie (in electron counts where it could be converted) and what it allows."""

    notebook: str
    source: object                 # the file (Path), or "sample"
    raw: object                    # the signal as loaded (never modified)
    movie: object                  # the signal the notebook works on: cropped, in counts when converted
    truth: object = None           # the clean truth (same crop), or None
    is_sample: bool = False
    counts: bool = False           # movie holds electron counts (as recorded or converted)
    conversion: str | None = None  # how detector units were converted, when they were
    counts_reason: str | None = None   # why the Poisson sections are skipped, when they are
    dose: object = None            # temnb.core.dose.Dose, or None
    dose_note: str = ""
    notes: list = field(default_factory=list)

    @property
    def has_truth(self) -> bool:
        return self.truth is not None

    @property
    def n_frames(self) -> int:
        am = self.movie.axes_manager
        return int(am.navigation_size) if am.navigation_dimension else 1

    @property
    def frame_shape(self) -> tuple:
        return tuple(int(n) for n in self.movie.axes_manager.signal_shape[::-1])

    @property
    def label(self) -> str:
        return "the bundled simulated sample" if self.is_sample else f"'{self.source}'"

    def summary(self) -> str:
        """A paragraph: what the data are and which path the notebook takes."""
        from ..io.calibration import pixel_size_angstrom

        ny, nx = self.frame_shape
        pixel = pixel_size_angstrom(self.movie)
        lines = [f"DATA: {self.label}: {self.n_frames} frame{'s' * (self.n_frames != 1)} of {ny} x {nx} px"
                 + (f", {pixel:.4g} Å/px" if pixel else ", no length calibration") + "."]
        if self.has_truth:
            lines.append("It has its ground truth: the sections that compare with the truth run.")
        elif self.notebook in _SIMULATES_ITS_OWN:
            lines.append("No ground truth, and none is needed: this notebook simulates its own data; DATA only "
                         "suggests the pixel size and dose to simulate.")
        else:
            lines.append("No ground truth: this notebook takes the no-reference path (uMSE/uPSNR, contrast, "
                         "spectra); sections that need the truth say so and are skipped.")
        if self.conversion:
            lines.append(f"Detector units converted to electron counts: {self.conversion}.")
        if not self.counts:
            lines.append(f"Not electron counts ({self.counts_reason}): the Poisson sections are skipped.")
        if self.dose is not None:
            from ..core.dose import describe

            lines.append(f"Dose: {describe(self.dose)} ({self.dose_note}).")
        elif self.counts:
            lines.append(f"Dose unknown: {self.dose_note}.")
        lines += self.notes
        return "\n".join(lines)

    def report(self) -> None:
        print(self.summary())

    def skip_without_truth(self, section: str) -> bool:
        """True (and a sentence saying why) when *section* needs the truth this data lacks."""
        if self.has_truth:
            return False
        print(f"Skipped -- {section}: it needs the ground truth, which {self.label} does not have "
              "(only simulated movies do).")
        return True

    def skip_without_counts(self, section: str) -> bool:
        """True (and why) when *section* needs electron counts this data is not in."""
        if self.counts:
            return False
        print(f"Skipped -- {section}: it needs electron counts ({self.counts_reason}).")
        return True


def _to_counts(movie, label):
    """``(movie in counts or None, conversion text, reason)``: as recorded, converted, or why not."""
    from ..io import counts as counts_mod
    from ..core import metadata as md

    check = counts_mod.check_counts(movie)
    if check.flag is True or (check.flag is None and check.ok):
        return movie, None, None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", TemnbWarning)
            converted = counts_mod.to_counts(movie)
    except TemnbError as exc:
        return None, None, f"{'; '.join(check.reasons)}, and to_counts could not convert it: {exc.problem}"
    gain, offset = md.get(converted, "gain"), md.get(converted, "offset")
    after = counts_mod.check_counts(converted)
    if not 0.5 <= (after.dispersion or 0) <= 2.0:
        return None, None, (f"{'; '.join(check.reasons)}; after to_counts (gain {gain:.4g}, offset {offset:.4g}) "
                            f"the noise variance / mean is {after.dispersion:.3g}, not ~1: the noise is not "
                            "shot noise (a processed or a dark image?)")
    return converted, f"(value - {offset:.4g}) / {gain:.4g}, gain and offset estimated from the data", None


def _dose(movie, is_counts):
    from ..core import metadata as md
    from ..core.dose import Dose
    from ..io.calibration import frame_time_s, pixel_size_angstrom
    from ..io.counts import estimate_dose

    pixel, ftime = pixel_size_angstrom(movie), frame_time_s(movie)
    recorded = md.get(movie, "dose_per_pixel")
    if recorded:
        return Dose(float(recorded), pixel, ftime), "recorded in the file's metadata"
    if not is_counts:
        return None, "the data are not electron counts"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", TemnbWarning)
            est = estimate_dose(movie)
    except TemnbError as exc:
        return None, f"no vacuum to measure it in ({exc.problem.split(':')[0]})"
    if not est.dose_per_pixel > 0:
        return None, "the vacuum estimate is not positive"
    return Dose(est.dose_per_pixel, pixel, ftime), f"measured in the vacuum, {est.method}"


def open_data(data, notebook: str, *, n_frames: int | None = None, size: int | None = None,
              min_frames: int | None = None, lazy: bool = False) -> NotebookData:
    """Load *data* (a notebook's ``DATA``) for *notebook* and decide its path.

    ``n_frames`` and ``size`` crop (the presets' first frames and centred square);
    ``min_frames`` overrides :data:`MIN_FRAMES` (e.g. 2·gap + 1 for a chosen gap).
    Raises :class:`TooFewFramesError` when the movie is shorter than the notebook needs.
    """
    from ..io import bundled, files

    key = _key(notebook)
    needed, why = MIN_FRAMES[key]
    needed = needed if min_frames is None else int(min_frames)
    sample = is_bundled_sample(data)
    path = bundled.resolve(data)
    raw = files.load(path, lazy=lazy)
    am = raw.axes_manager
    if am.navigation_dimension > 1:
        raise DataShapeError(f"has {am.navigation_dimension} navigation axes ({am.navigation_shape}); "
                             f"notebook {key} needs a movie: time x height x width", source=path,
                             hint="pick one series first, e.g. signal.inav[:, 0], and save it with temnb.save")
    frames = int(am.navigation_size) if am.navigation_dimension else 1
    if frames < needed:
        works = ", ".join(k.split("_", 1)[0] for k in notebooks_for(frames)) or "none"
        raise TooFewFramesError(
            f"has {frames} frame{'s' * (frames != 1)}, but notebook {key} needs at least {needed} ({why})",
            source=path, hint=f"give a longer movie; on {frames} frame{'s' * (frames != 1)} the notebooks "
                              f"{works} work")
    smallest = MIN_SIZE.get(key)
    if smallest and min(am.signal_shape) < smallest:
        raise DataShapeError(f"has frames of {am.signal_shape[1]} x {am.signal_shape[0]} px, but notebook {key} "
                             f"needs at least {smallest} x {smallest} px", source=path,
                             hint="give a larger field of view")
    movie = bundled.crop_movie(raw, n_frames=n_frames, size=size)
    truth = None
    truth_file = bundled.sample_path("truth") if sample else truth_path_for(path)
    if truth_file is not None:
        candidate = bundled.crop_movie(files.load(truth_file, lazy=lazy), n_frames=n_frames, size=size)
        if candidate.data.shape == movie.data.shape:
            truth = candidate
    counted, conversion, reason = _to_counts(movie, path)
    result = NotebookData(notebook=key, source="sample" if sample else path, raw=raw,
                          movie=counted if counted is not None else movie, truth=truth, is_sample=sample,
                          counts=counted is not None, conversion=conversion, counts_reason=reason)
    result.dose, result.dose_note = _dose(result.movie, result.counts)
    cropped_time = n_frames is not None and frames > n_frames
    cropped_space = size is not None and min(am.signal_shape) > size
    if cropped_time or cropped_space:
        ny, nx = result.frame_shape
        parts = ([f"the first {result.n_frames} of the {frames} frames"] if cropped_time else []) + \
                ([f"a centred {ny} x {nx} px crop"] if cropped_space else [])
        result.notes.append(f"The preset works on {' and '.join(parts)}.")
    return result
