"""Dose per pixel and dose per area: the physics is electrons per Å², the detector counts per pixel.

The reference regime is the simulation-trained U-Net paper's (Mohan et al. 2022): 5,000 e⁻/Å²/s in
25 ms frames on 0.061 Å pixels, i.e. 0.45 e⁻/px = 121 e⁻/Å² per frame.  A coarser pixel at the same
dose per area is the same experiment binned: 0.122 Å/px carries 1.8 e⁻/px, 0.244 Å/px 7.2 e⁻/px.
Keeping e⁻/px while changing the pixel size is a different experiment (fewer electrons per column).
"""
from __future__ import annotations

from dataclasses import dataclass

from .checks import positive
from .errors import ParameterError

__all__ = ["Dose", "PAPER", "per_area", "per_pixel", "binned", "describe"]


@dataclass(frozen=True)
class Dose:
    """A dose per frame: ``per_pixel`` e⁻/px on pixels of ``pixel_size_A`` Å, frames of ``frame_time_s`` s.

    ``per_area`` (e⁻/Å² per frame) needs the pixel size, ``rate`` (e⁻/Å²/s) the frame time too;
    each is None when what it needs is unknown.
    """

    per_pixel: float
    pixel_size_A: float | None = None
    frame_time_s: float | None = None

    def __post_init__(self):
        object.__setattr__(self, "per_pixel", positive(self.per_pixel, "dose per pixel (e-/px)"))
        if self.pixel_size_A is not None:
            object.__setattr__(self, "pixel_size_A", positive(self.pixel_size_A, "pixel size (Å)"))
        if self.frame_time_s is not None:
            object.__setattr__(self, "frame_time_s", positive(self.frame_time_s, "frame time (s)"))

    @classmethod
    def from_area(cls, per_area_A2: float, pixel_size_A: float, frame_time_s: float | None = None) -> Dose:
        """The dose that puts *per_area_A2* e⁻/Å² per frame on pixels of *pixel_size_A* Å."""
        return cls(per_pixel(per_area_A2, pixel_size_A), pixel_size_A, frame_time_s)

    @property
    def per_area(self) -> float | None:
        """e⁻/Å² per frame, or None when the pixel size is unknown."""
        return None if self.pixel_size_A is None else self.per_pixel / self.pixel_size_A**2

    @property
    def rate(self) -> float | None:
        """e⁻/Å²/s, or None when the pixel size or the frame time is unknown."""
        area = self.per_area
        return None if area is None or self.frame_time_s is None else area / self.frame_time_s

    def binned(self, factor: int) -> Dose:
        """The same experiment on pixels *factor* × *factor* larger (same e⁻/Å², factor² × e⁻/px)."""
        return binned(self, factor)

    def as_dict(self) -> dict:
        """The numbers a notebook or a model card records (None where unknown)."""
        return {"dose_per_pixel": self.per_pixel, "dose_per_area": self.per_area, "dose_rate": self.rate,
                "pixel_size_A": self.pixel_size_A, "frame_time_s": self.frame_time_s}

    def __str__(self) -> str:
        return describe(self)


#: The paper's regime: 0.45 e⁻/px on 0.061 Å pixels in 25 ms frames = 121 e⁻/Å² per frame, 4,840 e⁻/Å²/s.
PAPER = Dose(0.45, 0.061, 0.025)


def per_area(per_pixel_e: float, pixel_size_A: float) -> float:
    """e⁻/Å² per frame of *per_pixel_e* e⁻/px on pixels of *pixel_size_A* Å."""
    return positive(per_pixel_e, "dose per pixel (e-/px)") / positive(pixel_size_A, "pixel size (Å)") ** 2


def per_pixel(per_area_A2: float, pixel_size_A: float) -> float:
    """e⁻/px of *per_area_A2* e⁻/Å² per frame on pixels of *pixel_size_A* Å."""
    return positive(per_area_A2, "dose per area (e-/Å²)") * positive(pixel_size_A, "pixel size (Å)") ** 2


def binned(dose: Dose, factor: int) -> Dose:
    """*dose* on pixels *factor* × *factor* larger: the same e⁻/Å², factor² times the e⁻/px."""
    if isinstance(factor, bool) or not isinstance(factor, int) or factor < 1:
        raise ParameterError(f"binning factor {factor!r} must be a whole number >= 1")
    size = None if dose.pixel_size_A is None else dose.pixel_size_A * factor
    return Dose(dose.per_pixel * factor**2, size, dose.frame_time_s)


def describe(dose: Dose) -> str:
    """``0.45 e⁻/px = 121 e⁻/Å² per frame (0.061 Å/px; 4,840 e⁻/Å²/s at 25 ms)``, with what is known."""
    text = f"{dose.per_pixel:.3g} e⁻/px"
    if dose.per_area is None:
        return text + " per frame (pixel size unknown, so no dose per Å²)"
    text += f" = {dose.per_area:,.3g} e⁻/Å² per frame ({dose.pixel_size_A:.3g} Å/px"
    if dose.rate is not None:
        text += f"; {dose.rate:,.0f} e⁻/Å²/s at {dose.frame_time_s * 1e3:.3g} ms"
    return text + ")"
