"""The effective filter of a denoising network at a pixel: one row of its Jacobian.

A denoiser ``f`` maps the noisy counts ``y`` of a frame (or a window of frames) to denoised counts.
Around any input it is, to first order, a linear filter: ``f_i(y) ~ sum_j a_ij y_j`` with
``a_ij = d f_i / d y_j``.  For a bias-free network (no additive constants, ReLU-type activations:
temnb's U-Net and DnCNN by default, UDVD and WCVD/WCID with ``bias=False``) this holds *exactly*:
such a network is positively homogeneous, ``f(c y) = c f(y)``, and Euler's theorem then gives
``f(y) = J(y) y`` (Mohan et al. 2020).  Row i of the Jacobian is therefore the adaptive filter the
network applied at pixel i -- a local average whose weights it chose from the data -- and looking at
it shows how far the network reached, whether it averaged along a lattice plane or across it, and,
for a video network, which frames it drew on and how far it followed the motion between them.

:func:`effective_filters` computes that row for several pixels at once: one forward pass per output
frame, then vector-Jacobian products batched with :func:`torch.func.vmap` over the pixels (a
``method="loop"`` reference runs one forward and one backward pass per pixel instead).  Each result
is an :class:`EffectiveFilter` holding the weights and the numbers that summarise them (their sum,
the residual of the local linear model, the radius holding 90 % of the weight, and for video networks
the weight and centroid shift per input frame); ``.as_signal()`` turns it into a hyperspy signal
with the input's calibration, centred on the pixel.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from ..core.errors import DataShapeError, ParameterError, TemnbWarning
from ..core.signals import require_image_data, require_movie, source_label, unwrap
from ..io.calibration import frame_time_s, pixel_sizes_angstrom
from ..nets.config import receptive_field_bounds
from ..nets.diagnostics import effective_radius

__all__ = ["METHODS", "SIZE_FRACTION", "EffectiveFilter", "effective_filter", "effective_filters"]

SIZE_FRACTION = 0.9   # the effective radius holds this share of sum |a|
METHODS = ("batched", "loop")
# Pixels (or packs of them) per vmapped backward pass on a CPU: about this many input values in all.
# Measured on 2 cores (benchmarks/bench_jacobian.py): a U-Net on 256^2 took 0.27 s per filter one at a
# time and 0.46 s four at a time -- the larger backward streams through main memory -- while tiny
# frames gain from 8-16.  On CUDA the pixels go 16 at a time.
_CPU_BATCH_VALUES = 2**15
_CUDA_BATCH = 16


# --------------------------------------------------------------------------- the result
@dataclass
class EffectiveFilter:
    """The effective filter of a network at one output pixel, and what summarises it.

    Attributes
    ----------
    pixel : (frame, row, col)
        The output pixel (frame 0 for a single input frame).
    weights : ndarray, shape (n_input_frames, rows, cols)
        ``d f(pixel) / d y`` over the input counts ``y`` of the frames in *input_frames* and the
        region ``rows`` x ``cols`` whose top-left pixel is *origin* (the whole frame by default).
        Dimensionless: denoised electrons per input electron.
    input_frames : tuple of int
        The movie frames the network read for this output frame (one for a single-frame network;
        ``temporal_window`` distinct frames for a video network, fewer at the movie's ends, where
        temnb.denoise reflects the window in time and a frame counts twice).
    origin : (row, col)
        Frame coordinates of ``weights[:, 0, 0]``.
    value : float
        ``f(pixel)``, the denoised counts, as temnb.denoise computes them.
    linear_part : float
        ``sum_j a_ij y_j``: what the filter gives when applied to the input.
    filter_sum : float
        ``sum_j a_ij``.  About 1 for a bias-free denoiser on a flat region: a weighted local average
        that keeps the mean.  Smaller where it takes the mean down, larger where it sharpens.
    residual : float
        ``value - linear_part`` in counts.  Float rounding (a relative size of about 1e-7) for a
        bias-free network, whose output *is* its local linear filter applied to the input; clearly
        not zero for a network with biases (N2V, ``bias_free=False``), whose output also holds a
        constant the filter does not show.
    relative_residual : float
        ``|residual| / sum_j |a_ij y_j|``.
    radius_px, radius_A : float, float or None
        Radius around the pixel of the disc that holds ``SIZE_FRACTION`` (90 %) of ``sum |a|``
        (summed over the input frames), in pixels and, with a length calibration, in Å.
    frame_weights : ndarray, shape (n_input_frames,)
        ``sum`` of the weights in each input frame; they add up to *filter_sum*.
    frame_centroid_shift_px, frame_centroid_shift_A : ndarray (n_input_frames, 2), ndarray or None
        (dy, dx) of the centroid of each frame's ``|a|`` relative to the pixel: where in that frame
        the network looked.  A shift that grows with the frame's distance in time is motion the
        network followed.  (``|a|``, not ``a``: the signed sum of a frame's weights can be near zero.)
    centre_weight : float
        The weight of the pixel itself (its own frame): exactly 0 for a blind-spot network (UDVD,
        WCVD, WCID), which never sees the pixel it predicts -- as long as the low-pass is left out:
        the FFT low-pass after WCVD/WCID mixes in the outputs at the neighbouring pixels, which did see
        this one, so with it the centre weight is small but not 0.
    region : dict
        ``kind`` ("whole frame" or "crop"), ``rows`` and ``cols`` (start, stop) in frame coordinates,
        ``padded_shape`` (what the network saw, padded to its size multiple) and
        ``covers_receptive_field``: whether the crop held everything the pixel depends on, so that
        the filter is the whole frame's.
    lowpass_cutoff : float or None
        The FFT low-pass (1/Å) that temnb.denoise applies after a WCVD/WCID network, when it is part
        of the filter here (None: none, or left out with ``include_lowpass=False``).
    dose : float
        Electrons per pixel the network's input was divided by (and its output multiplied by).
    method : str
        "batched" or "loop".
    model : dict
        ``architecture``, ``config`` and ``model_folder`` of the network.
    calibration : dict
        Scale, units and name of the input's axes ``y``, ``x`` and ``time`` (pixels and frames for an
        array), for :meth:`as_signal`.
    """

    pixel: tuple
    weights: np.ndarray
    input_frames: tuple
    origin: tuple
    value: float
    linear_part: float
    filter_sum: float
    residual: float
    relative_residual: float
    radius_px: float
    radius_A: float | None
    frame_weights: np.ndarray
    frame_centroid_shift_px: np.ndarray
    frame_centroid_shift_A: np.ndarray | None
    centre_weight: float
    region: dict
    lowpass_cutoff: float | None
    dose: float
    method: str
    model: dict = field(default_factory=dict)
    calibration: dict = field(default_factory=dict)

    @property
    def spatial_weights(self) -> np.ndarray:
        """The weights summed over the input frames, (rows, cols): the filter as one image."""
        return self.weights.sum(axis=0)

    def summary(self) -> dict:
        """The numbers (no weights), as plain JSON-able values: for tables and metadata."""
        def plain(value):
            if isinstance(value, np.ndarray):
                return value.tolist()
            if isinstance(value, (np.floating, np.integer)):
                return value.item()
            return value

        keys = ("pixel", "input_frames", "origin", "value", "linear_part", "filter_sum", "residual",
                "relative_residual", "radius_px", "radius_A", "frame_weights", "frame_centroid_shift_px",
                "frame_centroid_shift_A", "centre_weight", "region", "lowpass_cutoff", "dose", "method")
        out = {key: plain(getattr(self, key)) for key in keys}
        out["pixel"], out["input_frames"], out["origin"] = list(self.pixel), list(self.input_frames), list(self.origin)
        out["region"] = {k: list(v) if isinstance(v, tuple) else v for k, v in self.region.items()}
        out["architecture"] = self.model.get("architecture")
        out["model_folder"] = self.model.get("model_folder")
        return out

    def as_signal(self):
        """The weights as a hyperspy ``Signal2D`` with the input's calibration, its axes offset so that
        the output pixel sits at (0, 0) (and, for several input frames, its frame at time 0); one frame
        gives an image, several a stack with the input frames as navigation axis.
        ``metadata.Effective_filter`` holds :meth:`summary` and the model; ``metadata.temnb.source``
        the input's file, when it had one."""
        import hyperspy.api as hs

        from ..core import metadata as md

        t, r, c = self.pixel
        spatial = []
        for name, start, centre, size in (("y", self.origin[0], r, self.weights.shape[1]),
                                          ("x", self.origin[1], c, self.weights.shape[2])):
            scale, units, axis_name = self.calibration.get(name, (1.0, "px", name))
            spatial.append({"name": axis_name, "units": units, "scale": scale, "size": size,
                            "offset": (start - centre) * scale, "navigate": False})
        if self.weights.shape[0] == 1:
            data, axes = self.weights[0], spatial
        else:
            scale, units, axis_name = self.calibration.get("time", (1.0, "frames", "time"))
            axes = [{"name": axis_name, "units": units, "scale": scale, "size": self.weights.shape[0],
                     "offset": (self.input_frames[0] - t) * scale, "navigate": True}] + spatial
            data = self.weights
        signal = hs.signals.Signal2D(np.ascontiguousarray(data, dtype=np.float32), axes=axes)
        arch = self.model.get("architecture", "network")
        where = f"frame {t}, row {r}, col {c}" if self.weights.shape[0] > 1 or t else f"row {r}, col {c}"
        signal.metadata.General.title = f"effective filter of {arch} at {where}"
        signal.metadata.set_item("Signal.quantity", "Weight (d denoised / d input counts)")
        signal.metadata.set_item("Effective_filter", {**self.summary(), "model": {
            k: v for k, v in self.model.items() if v is not None}})
        if self.model.get("source") is not None:
            md.set(signal, "source", self.model["source"])
        return signal


# --------------------------------------------------------------------------- public functions
def effective_filter(data, model, pixel, **options) -> EffectiveFilter:
    """The effective filter of *model* at one output *pixel* of *data*: :func:`effective_filters`
    for a single pixel ((row, col) for a frame, (frame, row, col) for a movie)."""
    return effective_filters(data, model, [pixel], **options)[0]


def effective_filters(data, model, pixels, *, dose=None, pixel_size_A=None, crop=None, include_lowpass=True,
                      method="batched", batch_size=None, strict=True, device="auto",
                      name=None) -> list[EffectiveFilter]:
    """The effective filter -- the row ``d f_i / d y`` of the Jacobian -- of a denoising network at
    each of *pixels*, in the units of :func:`temnb.denoise`.

    ``f`` is exactly what temnb.denoise computes from the input counts ``y``: the frames (for a video
    network the window of ``temporal_window`` frames around the output frame, reflected in time at
    the movie's ends) are reflect-padded to the network's size multiple, divided by the dose, passed
    through the network, multiplied by the dose and cropped back; for a network whose config has a
    ``lowpass_cutoff`` (WCVD, WCID) the ideal FFT low-pass of the whole denoised frame follows, and is
    *included* in the filter by default (it is part of what temnb.denoise returns; being linear, it
    keeps a bias-free network exactly linear).  ``include_lowpass=False`` leaves it out, to see the
    network alone.  The dose cancels in the Jacobian (``f(y) = d g(y / d)``), but not in the value and
    residual, which are in counts.  Not included: the tiling of frames larger than 1024^2 px on a CPU
    (2048^2 on CUDA; the filter here is the untiled network's, which the tiles reproduce away from
    their edges), the self-ensemble (``ensemble=``) and the bfloat16 autocast temnb.denoise uses on
    CUDA (float32 here, so that the residual measures the network, not the rounding).

    Parameters
    ----------
    data : ndarray or hyperspy signal
        A frame (H, W) or a movie (T, H, W) of counts, as given to temnb.denoise.
    model : torch.nn.Module or path
        A temnb network (in eval mode: one in training mode is refused, since its batch norm would
        normalise by the statistics of this very input and give another function) or a model folder
        (:func:`temnb.load_model`).
    pixels : sequence of (row, col) or (frame, row, col)
        Output pixels; (row, col) for a frame, (frame, row, col) for a movie.  An (N, 2) or (N, 3)
        array works too.
    dose : float, optional
        Electrons per pixel per frame; default as temnb.denoise: the signal's ``dose_per_pixel``,
        else the data mean.
    pixel_size_A : float, optional
        Å per pixel, for the low-pass of an array (a signal's calibration is used otherwise).
    crop : None, "auto" or int
        None (default): the network sees the whole frame, as in temnb.denoise.  "auto": the smallest
        region that holds the receptive field of every pixel of an output frame (aligned to the
        network's pooling grid and padded to its size multiple), which gives the same filter for less
        work when the frame is much larger than the receptive field.  A number: a square region of
        that side around the pixels; it must hold their receptive field (see *strict*).  The filter of
        a crop too small differs from the whole frame's: the network's padding then stands in for
        pixels it would have read.  A low-pass mixes the whole frame, so it needs ``crop=None``
        (or ``include_lowpass=False``).
    include_lowpass : bool
        Include the network's FFT low-pass (WCVD/WCID with ``lowpass_cutoff``); default True.
    method : "batched" or "loop"
        "batched" (default): one forward pass per output frame and the pixels' vector-Jacobian products
        vmapped in groups of *batch_size*; pixels whose receptive fields do not overlap share one
        backward pass (exact: a backward pass is linear in what it pulls back).  "loop": a fresh forward and one backward pass per pixel --
        the plain autograd reference the batched path is tested and benchmarked against.
    batch_size : int, optional
        Backward passes vmapped together (memory grows with it: one input-sized gradient and the
        backward's intermediates each).  Default: 16 on CUDA; on a CPU as many as keep about 32k input
        values in flight (1 for a 256^2 frame, 16 for 40^2), since there a large vmapped backward is
        slower per pixel than a small one.
    strict : bool
        With an integer *crop* that does not hold a pixel's receptive field: True (default) raises a
        ParameterError; False computes it anyway, warns, and records
        ``region["covers_receptive_field"] = False``.
    device : str
        "auto" (default), "cpu", "cuda"...; the network is moved there, as temnb.denoise does.
    name : str, optional
        What to call the data in messages.

    The computation runs on torch's current number of threads (choose it with
    :func:`temnb.core.device.torch_threads`).

    Returns
    -------
    list of EffectiveFilter
        One per pixel, in the order given.

    Raises
    ------
    ParameterError
        A pixel outside the frame (or movie), a model in training mode, a bad *crop*, *method* or
        *batch_size*, a crop that misses the receptive field (with *strict*), a low-pass with a crop.
    DataShapeError
        *data* is not a frame or a movie; the network takes more than one channel.
    TooFewFramesError
        A movie shorter than the video network's window, or a single frame for a video network.
    """
    import torch

    from ..core.device import choose_device
    from ..nets.inference import _choose_dose, _lowpass_pixel, _resolve_model, _round_up

    source = source_label(data, name)
    array, template = unwrap(data, name=name)
    require_image_data(array, source=source, what="an effective filter")
    if method not in METHODS:
        raise ParameterError(f"method = {method!r}; it must be one of {', '.join(METHODS)}",
                             hint="'batched' is the fast path, 'loop' its one-pixel-at-a-time reference")
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer))
                                   or batch_size < 1):
        raise ParameterError(f"batch_size = {batch_size!r}; it must be a whole number >= 1 (pixels per pass)")
    if not isinstance(include_lowpass, bool) or not isinstance(strict, bool):
        raise ParameterError("include_lowpass and strict must be True or False")
    dev = choose_device(device)
    net, folder, _ = _resolve_model(model, dev)
    training = sorted({type(m).__name__ for m in net.modules() if m.training})
    if training:
        raise ParameterError(
            f"the network is in training mode ({', '.join(training)}): its batch norm would normalise by "
            "the statistics of this very input, which is not the function temnb.denoise applies",
            hint="call model.eval() first (temnb.load_model returns networks in eval mode)")
    tw, multiple = int(net.temporal_window), int(net.size_multiple)
    config = getattr(net, "config", None)
    if getattr(config, "in_channels", 1) != 1:
        raise DataShapeError(f"this network takes {config.in_channels} channels per frame; "
                             "an effective filter (like temnb.denoise) needs 1")
    if tw > 1:
        require_movie(array, min_frames=tw, source=source, what=f"a network that reads {tw} frames at a time")
    movie = array[None] if array.ndim == 2 else array
    n_frames, height, width = movie.shape
    targets = _parse_pixels(pixels, array.shape, source)
    dose_used = _choose_dose(dose, template, array, source)

    cutoff = getattr(config, "lowpass_cutoff", None) if include_lowpass else None
    lowpass_pixel = None
    if cutoff is not None:
        if crop is not None:
            raise ParameterError(
                f"this network's output is low-passed at {cutoff:g} 1/Å over the whole frame, so the filter of "
                "a crop is not the filter temnb.denoise applies", source=source,
                hint="use crop=None (the whole frame), or include_lowpass=False to see the network alone")
        lowpass_pixel = _lowpass_pixel(pixel_size_A, template, source, cutoff)

    padded_shape = (_round_up(height, multiple), _round_up(width, multiple))
    plan = _Geometry(net, config, multiple, (height, width), padded_shape)
    half = tw // 2
    time_index = np.pad(np.arange(n_frames), (half, half), mode="reflect")
    calibration = _calibration(template)
    model_info = {"architecture": getattr(config, "architecture", type(net).__name__),
                  "config": config.to_dict() if hasattr(config, "to_dict") else {},
                  "model_folder": folder,
                  "source": None if template is None else _source_files(template)}

    param = next(net.parameters(), None)
    if param is not None and param.device != torch.device(dev):
        net.to(dev)
    results = {}
    by_frame: dict[int, list[int]] = {}
    for k, (t, _, _) in enumerate(targets):
        by_frame.setdefault(t, []).append(k)
    for t, members in by_frame.items():
        window = time_index[t:t + tw]
        input_frames = np.unique(window)                     # contiguous: a reflected window is a range
        slots = torch.as_tensor(np.searchsorted(input_frames, window), device=dev)
        positions = [targets[k][1:] for k in members]
        (r0, r1), (c0, c1), covered = plan.region(positions, crop, strict, source)
        y = torch.from_numpy(np.ascontiguousarray(movie[input_frames, r0:r1, c0:c1], dtype=np.float32)).to(dev)
        denoiser = _Denoiser(net, slots, dose_used, padded=(padded_shape[0] if r1 == height else None,
                                                            padded_shape[1] if c1 == width else None),
                             origin=(r0, c0), cutoff=cutoff, lowpass_pixel=lowpass_pixel)
        local = [(r - r0, c - c0) for r, c in positions]
        if method == "batched":
            boxes = [plan.box(p, (r0, r1), (c0, c1)) if cutoff is None else None for p in positions]
            if batch_size is None:
                chosen = _CUDA_BATCH if getattr(dev, "type", str(dev)) == "cuda" else max(
                    1, min(16, _CPU_BATCH_VALUES // int(np.prod(y.shape))))
            else:
                chosen = int(batch_size)
            values, grads = _batched_rows(denoiser, y, local, chosen, boxes)
        else:
            values, grads = _looped_rows(denoiser, y, local)
        whole = (r0, r1, c0, c1) == (0, height, 0, width)
        region = {"kind": "whole frame" if whole else "crop", "rows": (r0, r1), "cols": (c0, c1),
                  "padded_shape": denoiser.padded_shape(y.shape[-2:]), "covers_receptive_field": bool(covered)}
        y_np = y.double().cpu().numpy()
        for k, value, weights in zip(members, values, grads):
            results[k] = _summarise(targets[k], weights, y_np, value, tuple(int(f) for f in input_frames), (r0, c0),
                                    region, cutoff, dose_used, method, model_info, calibration)
    return [results[k] for k in range(len(targets))]


# --------------------------------------------------------------------------- the function f and its rows
class _Denoiser:
    """``f``: the input counts of a region of the distinct input frames -> the denoised counts of the
    region, as temnb.denoise computes them (the window gathered from the distinct frames, reflect
    padding to the size multiple where the region ends at the frame's edge, ``/ dose``, network,
    ``* dose``, crop, optional whole-frame low-pass).  Written in torch, so autograd differentiates the
    padding and the gathering too: a pixel read twice (reflected) gets both contributions."""

    def __init__(self, net, slots, dose, *, padded, origin, cutoff, lowpass_pixel):
        self.net, self.slots, self.dose = net, slots, float(dose)
        self.padded_rows, self.padded_cols = padded   # None: the region does not reach that edge
        self.origin, self.cutoff, self.lowpass_pixel = origin, cutoff, lowpass_pixel

    def pads(self, shape):
        rows, cols = int(shape[0]), int(shape[1])
        bottom = 0 if self.padded_rows is None else self.padded_rows - self.origin[0] - rows
        right = 0 if self.padded_cols is None else self.padded_cols - self.origin[1] - cols
        return bottom, right

    def padded_shape(self, shape):
        bottom, right = self.pads(shape)
        return int(shape[0]) + bottom, int(shape[1]) + right

    def __call__(self, y):
        import torch.nn.functional as F

        rows, cols = y.shape[-2:]
        x = y[self.slots][None]                                   # (1, temporal_window, rows, cols)
        bottom, right = self.pads((rows, cols))
        if bottom or right:
            x = F.pad(x, (0, right, 0, bottom), mode="reflect")   # as np.pad(..., mode="reflect")
        out = self.net(x / self.dose)[0, 0, :rows, :cols] * self.dose
        if self.cutoff is not None:
            from ..nets.blind_spot_models import fft_lowpass

            # In float64, as temnb.denoise does it (numpy): frequencies exactly on the cut-off are kept
            # or dropped depending on the precision the mask is computed in.
            out = fft_lowpass(out.double(), self.cutoff, self.lowpass_pixel).to(y.dtype)
        return out


def _packs(boxes):
    """Pixels grouped so that the receptive fields (*boxes*: (row_lo, row_hi, col_lo, col_hi), local and
    inclusive, or None where unknown) within a group are disjoint: greedily, in the order given."""
    def apart(a, b):
        return a[1] < b[0] or b[1] < a[0] or a[3] < b[2] or b[3] < a[2]

    packs = []
    for k, box in enumerate(boxes):
        for pack in packs if box is not None else ():
            if all(boxes[j] is not None and apart(box, boxes[j]) for j in pack):
                pack.append(k)
                break
        else:
            packs.append([k])
    return packs


def _batched_rows(denoiser, y, local, batch_size, boxes):
    """Values and Jacobian rows at the *local* pixels: one forward pass, then vector-Jacobian products
    vmapped *batch_size* at a time (the forward's activations are shared by every pixel; the loop
    recomputes them per pixel).

    A backward pass is linear in its cotangent, so one pass with the one-hot cotangents of several
    pixels summed gives the sum of their rows; where their receptive fields (*boxes*) do not overlap,
    each row is that sum restricted to its own box -- exactly.  Pixels far apart (further than the
    receptive field: a WCVD's 7 px, a U-Net's 116) share a backward pass that way."""
    import torch
    from torch.func import vjp, vmap

    packs = _packs(boxes)
    with torch.enable_grad():
        out, pullback = vjp(denoiser, y)
        values = [float(out[r, c].detach()) for r, c in local]
        rows = [None] * len(local)
        for start in range(0, len(packs), batch_size):
            chunk = packs[start:start + batch_size]
            cotangents = torch.zeros((len(chunk),) + tuple(out.shape), dtype=out.dtype, device=out.device)
            for n, pack in enumerate(chunk):
                for k in pack:
                    cotangents[(n,) + tuple(local[k])] = 1.0
            (grads,) = vmap(pullback)(cotangents)
            grads = grads.detach().cpu().numpy()
            for n, pack in enumerate(chunk):
                if len(pack) == 1:
                    rows[pack[0]] = grads[n]
                    continue
                for k in pack:
                    r_lo, r_hi, c_lo, c_hi = boxes[k]
                    row = np.zeros_like(grads[n])
                    row[:, r_lo:r_hi + 1, c_lo:c_hi + 1] = grads[n][:, r_lo:r_hi + 1, c_lo:c_hi + 1]
                    rows[k] = row
    return values, rows


def _looped_rows(denoiser, y, local):
    """The reference: a fresh forward pass and one ``autograd.grad`` per pixel."""
    import torch

    values, rows = [], []
    with torch.enable_grad():
        for r, c in local:
            leaf = y.detach().clone().requires_grad_(True)
            out = denoiser(leaf)
            (grad,) = torch.autograd.grad(out[r, c], leaf)
            values.append(float(out[r, c].detach()))
            rows.append(grad.detach().cpu().numpy())
    return values, rows


# --------------------------------------------------------------------------- regions
class _Geometry:
    """Where a pixel's output can come from, and the region of the frame that holds it.

    Along each axis the receptive field of the output pixel p is ``[p + lo, p + hi]`` in the padded
    frame (:func:`temnb.nets.config.receptive_field_bounds`; a U-Net's depends on p modulo its pooling
    grid).  A region gives the whole frame's output at p when it holds that interval (clipped to the
    padded frame: where it is clipped, the region must reach the frame's edge, so that the network's
    own padding there is the same), starts on the pooling grid (a multiple of the size multiple, so
    that the U-Net pools the same 2x2 blocks -- its rotated copies in UDVD too, since the padded frame
    is a multiple as well) and, for a network with circular padding (WCVD, WCID), spans the whole
    axis wherever the interval wraps around an edge."""

    def __init__(self, net, config, multiple, shape, padded_shape):
        self.net, self.config, self.multiple = net, config, multiple
        self.shape, self.padded_shape = shape, padded_shape
        self.least = max(int(getattr(net, "_min_size", 1)), multiple)
        self.wraps = getattr(config, "architecture", None) in ("WCVD", "WCID")
        try:
            receptive_field_bounds(config, 0)
            self.exact_bounds = True
        except ParameterError:
            self.exact_bounds = False

    def bounds(self, position):
        try:
            return receptive_field_bounds(self.config, int(position))
        except ParameterError:  # a registered architecture without a rule: assume the widest reach
            reach = int(self.net.receptive_field)
            return -reach, reach

    def box(self, position, rows, cols):
        """The input pixels output *position* (row, col) can depend on, as (row_lo, row_hi, col_lo, col_hi)
        inclusive in the coordinates of the region *rows* x *cols* ((start, stop) each), or None when
        that is not known exactly (an architecture without a receptive-field rule, or a circular
        padding that wraps it round the frame).  Reflect padding at the bottom and right edges brings
        in rows and columns mirrored back into the frame: the box reaches down to them too."""
        if not self.exact_bounds:
            return None
        box = []
        for axis, p, (start, stop) in ((0, position[0], rows), (1, position[1], cols)):
            length, padded = self.shape[axis], self.padded_shape[axis]
            lo, hi = self.bounds(p)
            lo, hi = p + lo, p + hi
            if self.wraps and (lo < 0 or hi > length - 1):
                return None
            hi = min(hi, padded - 1)
            if hi > length - 1:                  # padded rows h + k mirror rows h - 2 - k
                lo = min(lo, 2 * (length - 1) - hi)
            box += [max(lo, start) - start, min(hi, length - 1, stop - 1) - start]
        return tuple(box)

    def _needed(self, positions, axis):
        """(first, last) padded-frame index the positions read, and whether one wraps round an edge."""
        length, padded = self.shape[axis], self.padded_shape[axis]
        spans = [(p + lo, p + hi) for p in positions for lo, hi in [self.bounds(p)]]
        crosses = any(lo < 0 or hi > length - 1 for lo, hi in spans)
        first = max(0, min(lo for lo, _ in spans))
        last = min(padded - 1, max(hi for _, hi in spans))
        return first, last, crosses

    def _finish(self, start, stop_padded, axis):
        """(start, stop) in frame coordinates from an aligned padded span; widened until the network
        accepts it and reflect padding of the frame's edge can be done within it."""
        m, length, padded = self.multiple, self.shape[axis], self.padded_shape[axis]
        least = -(-self.least // m) * m
        while stop_padded - start < least:
            if stop_padded < padded:
                stop_padded += m
            else:
                start -= m
        stop = min(stop_padded, length)
        while stop == length and start > 0 and length - start <= padded - length:
            start -= m                                            # reflect padding needs pad < size
        return max(0, start), stop

    def region(self, positions, crop, strict, source):
        """((r0, r1), (c0, c1), covers_receptive_field) for output pixels *positions* [(row, col)]."""
        if crop is None:
            return (0, self.shape[0]), (0, self.shape[1]), True
        if isinstance(crop, str):
            if crop != "auto":
                raise ParameterError(f"crop = {crop!r}; it must be None (the whole frame), 'auto' or a side in px")
            spans = []
            for axis in (0, 1):
                first, last, crosses = self._needed([p[axis] for p in positions], axis)
                if crosses and self.wraps:
                    spans.append((0, self.shape[axis]))
                    continue
                m = self.multiple
                spans.append(self._finish(first // m * m, -(-(last + 1) // m) * m, axis))
            return spans[0], spans[1], True
        if isinstance(crop, bool) or not isinstance(crop, (int, np.integer)) or crop < 1:
            raise ParameterError(f"crop = {crop!r}; it must be None (the whole frame), 'auto' or a side in px")
        spans, covered, short = [], True, []
        for axis, label in ((0, "rows"), (1, "columns")):
            m, length, padded = self.multiple, self.shape[axis], self.padded_shape[axis]
            coords = [p[axis] for p in positions]
            side = min(padded, -(-max(int(crop), self.least) // m) * m)
            centre = (min(coords) + max(coords)) // 2
            start = min(max(0, (centre - side // 2) // m * m), padded - side)
            start, stop = self._finish(start, start + side, axis)
            first, last, crosses = self._needed(coords, axis)
            stop_padded = padded if stop == length else stop
            holds = first >= start and last < stop_padded and not (crosses and self.wraps and stop - start < length)
            if not holds:
                covered = False
                short.append(f"{label} {first}..{last} (the crop holds {start}..{stop_padded - 1})")
            spans.append((start, stop))
        if not covered:
            needed = int(self.net.receptive_field)
            message = (f"a crop of {int(crop)} px does not hold the receptive field ({needed} px) of the pixel(s): "
                       f"they read {'; '.join(short)}, so their filter would differ from the whole frame's")
            if strict:
                raise ParameterError(message, source=source,
                                     hint="use crop='auto' (the smallest crop that holds it), crop=None (the whole "
                                          "frame), or strict=False to compute the crop's filter anyway")
            warnings.warn(f"{message}; computed anyway (strict=False)", TemnbWarning, stacklevel=3)
        return spans[0], spans[1], covered


# --------------------------------------------------------------------------- inputs and summaries
def _parse_pixels(pixels, shape, source):
    """The pixels as [(frame, row, col)] of plain ints, checked against the data's *shape*."""
    movie = len(shape) == 3
    want = "(frame, row, col)" if movie else "(row, col)"
    try:
        table = np.asarray(pixels)
    except (TypeError, ValueError):
        table = None
    if table is None or table.dtype.kind not in "iu" or table.ndim != 2 or table.shape[1] != len(shape) \
            or table.shape[0] == 0:
        raise ParameterError(f"pixels = {pixels!r}; give a list of {want} whole numbers for data of shape "
                             f"{tuple(shape)}", source=source,
                             hint="effective_filter(data, model, pixel) takes one pixel")
    out = []
    for entry in table.tolist():
        if any(i < 0 or i >= n for i, n in zip(entry, shape)):
            raise ParameterError(f"pixel {tuple(entry)} is outside the {'movie' if movie else 'frame'} of shape "
                                 f"{tuple(shape)} {want}", source=source,
                                 hint="indices start at 0; negative indices are not accepted")
        out.append(tuple(entry) if movie else (0, *entry))
    return out


def _calibration(template) -> dict:
    """(scale, units, name) of the image axes y and x and of the time axis, from a signal; none for
    an array (:meth:`EffectiveFilter.as_signal` then uses pixels and frames)."""
    if template is None:
        return {}
    axes = template.axes_manager.signal_axes
    out = {}
    if len(axes) == 2:
        x, y = axes
        for key, axis in (("y", y), ("x", x)):
            out[key] = (float(axis.scale), str(axis.units), str(axis.name))
        out["pixel_size_A"] = pixel_sizes_angstrom(template)
    seconds = frame_time_s(template)
    if template.axes_manager.navigation_dimension == 1:
        nav = template.axes_manager.navigation_axes[0]
        out["time"] = (float(nav.scale), str(nav.units), str(nav.name))
    elif seconds is not None:
        out["time"] = (seconds, "s", "time")
    return out


def _source_files(template):
    from ..core import metadata as md

    return md.get(template, "source")


def _summarise(pixel, weights, y, value, input_frames, origin, region, cutoff, dose, method, model_info,
               calibration) -> EffectiveFilter:
    """An :class:`EffectiveFilter` from one Jacobian row *weights* (like *y*: frames x rows x cols)."""
    t, r, c = pixel
    a = np.asarray(weights, dtype=np.float64)
    linear_terms = a * y
    linear_part = float(linear_terms.sum())
    residual = float(value) - linear_part
    scale = float(np.abs(linear_terms).sum())
    local_r, local_c = r - origin[0], c - origin[1]

    magnitude = np.abs(a).sum(axis=0)
    rows, cols = magnitude.shape
    # effective_radius measures from the centre of its map: put the pixel there.
    centred = np.zeros((2 * rows - 1, 2 * cols - 1))
    centred[rows - 1 - local_r: 2 * rows - 1 - local_r, cols - 1 - local_c: 2 * cols - 1 - local_c] = magnitude
    radius_px = effective_radius(centred, SIZE_FRACTION)

    yy, xx = np.indices((rows, cols))
    shifts = np.full((a.shape[0], 2), np.nan)
    for k, frame in enumerate(np.abs(a)):
        total = frame.sum()
        if total > 0:
            shifts[k] = ((frame * yy).sum() / total - local_r, (frame * xx).sum() / total - local_c)
    size_y, size_x = calibration.get("pixel_size_A", (None, None))
    if size_x is not None:
        radius_A = radius_px * size_x      # temnb's calibration checks pixels are square (it warns if not)
        shifts_A = shifts * np.array([size_y if size_y is not None else size_x, size_x])
    else:
        radius_A, shifts_A = None, None
    return EffectiveFilter(
        pixel=(int(t), int(r), int(c)), weights=np.asarray(weights, dtype=np.float32), input_frames=input_frames,
        origin=(int(origin[0]), int(origin[1])), value=float(value), linear_part=linear_part,
        filter_sum=float(a.sum()), residual=residual, relative_residual=abs(residual) / scale if scale > 0 else 0.0,
        radius_px=float(radius_px), radius_A=None if radius_A is None else float(radius_A),
        frame_weights=a.sum(axis=(1, 2)), frame_centroid_shift_px=shifts, frame_centroid_shift_A=shifts_A,
        centre_weight=float(a[input_frames.index(t), local_r, local_c]), region=dict(region),
        lowpass_cutoff=cutoff, dose=float(dose), method=method, model=dict(model_info),
        calibration=dict(calibration))
