"""Apply a trained network to a frame or a movie: :func:`denoise`.

The network sees ``data / dose`` (so a bias-free net trained at one dose works
at another) and its output is multiplied back by the dose, so the result is in
the input's units (electrons).  Frames whose size is not a multiple of the
network's ``size_multiple`` are reflect-padded and cropped back; frames larger
than ``tile`` are cut into overlapping tiles blended with a smooth window whose
weights sum to one everywhere.
"""
from __future__ import annotations

import warnings
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..classic.fourier import warn_if_cutoff_removes_lattice
from ..core import metadata as md
from ..core.checks import positive, positive_int
from ..core.device import choose_threads, torch_threads
from ..core.errors import DataValueError, ParameterError, TemnbWarning
from ..core.signals import require_image_data, require_movie, rewrap, unwrap
from ..io.calibration import pixel_size_angstrom, require_pixel_size_angstrom
from .blind_spot_models import fft_lowpass

__all__ = ["denoise", "tile_starts", "tile_weights"]

_WHOLE_FRAME_PIXELS = {"cpu": 1024 * 1024, "cuda": 2048 * 2048}
_DEFAULT_TILE = 512


def _round_up(value: int, multiple: int) -> int:
    return -(-int(value) // multiple) * multiple


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start indices of tiles of size *tile* covering ``range(length)``, consecutive
    tiles overlapping by at least *overlap*; the last tile ends at *length*."""
    if length <= tile:
        return [0]
    step = tile - overlap
    starts = list(range(0, length - tile, step))
    starts.append(length - tile)
    return sorted(set(starts))


def tile_weights(length: int, starts: list[int], tile: int, overlap: int) -> np.ndarray:
    """Blending weights, shape (len(starts), tile): a raised-cosine ramp over the
    *overlap* pixels at each inner tile edge (none at the image borders),
    normalised so the weights of all tiles sum to exactly one at every pixel."""
    raw = np.ones((len(starts), tile))
    if overlap > 0 and len(starts) > 1:
        # (k + 0.5) / overlap keeps the edge weight small but positive.
        ramp = np.sin(0.5 * np.pi * (np.arange(overlap) + 0.5) / overlap) ** 2
        for i, s in enumerate(starts):
            if s > 0:
                raw[i, :overlap] *= ramp
            if s + tile < length:
                raw[i, tile - overlap:] *= ramp[::-1]
    total = np.zeros(length)
    for i, s in enumerate(starts):
        total[s:s + tile] += raw[i]
    return np.stack([raw[i] / total[s:s + tile] for i, s in enumerate(starts)])


def _resolve_model(model, device):
    """(module, folder or None, card dict)."""
    from .checkpoint import load_model

    if isinstance(model, (str, Path)):
        loaded = load_model(model, device=device)
        return loaded, str(Path(model)), dict(getattr(loaded, "model_card", {}) or {})
    if not isinstance(model, nn.Module):
        raise ParameterError(
            f"model must be a network (torch.nn.Module) or a model folder path, not {type(model).__name__}"
        )
    for attr in ("temporal_window", "size_multiple", "receptive_field"):
        if not hasattr(model, attr):
            raise ParameterError(
                f"{type(model).__name__} has no '{attr}' attribute, so temnb cannot apply it",
                hint="build networks with temnb.nets.registry.build_model or load them with temnb.load_model",
            )
    return model, getattr(model, "model_folder", None), dict(getattr(model, "model_card", {}) or {})


def _choose_dose(dose, template, array, source):
    """The dose a network's input is divided by: *dose*, else the signal's dose_per_pixel, else the
    data mean (shared by denoising and self-supervised training, which must agree)."""
    if dose is None and template is not None:
        dose = md.get(template, "dose_per_pixel")
    if dose is None:
        dose = float(np.mean(array))
        if not dose > 0:
            raise DataValueError(
                f"has mean {dose:g}, so it cannot be scaled to what the network was trained on",
                source=source,
                hint="pass dose= (electrons per pixel per frame) explicitly",
            )
        return dose
    return positive(dose, "dose", hint="electrons per pixel per frame, e.g. 0.45")


def _lowpass_pixel(pixel_size_A, template, source, cutoff):
    """The pixel size (Å) a low-pass in 1/Å needs: given, else from the signal's calibration."""
    if pixel_size_A is not None:
        return positive(pixel_size_A, "pixel_size_A", hint="Å per pixel")
    return require_pixel_size_angstrom(
        template, f"a network that low-passes its output at {cutoff:g} 1/Å", source=source,
        hint="pass pixel_size_A= (Å per pixel), or load the movie with its calibration")


def warn_if_outside_regime(card: dict, dose_per_pixel: float, pixel_size_A, *, source=None) -> list:
    """Warn (TemnbWarning) when a movie's dose per pixel or pixel size lies outside the regime a
    model was trained in (its card's ``regime``: within 2 x of the dose, 25 % of the pixel size);
    return what differs.  A bias-free network divides out the dose, but the noise it learned to
    remove looks different at another dose, and its filters are sized for its pixels."""
    regime = (card or {}).get("regime") or {}
    trained_dose, trained_pixel = regime.get("dose_per_pixel"), regime.get("pixel_size_A")
    problems = []
    if trained_dose and not 0.5 <= float(dose_per_pixel) / float(trained_dose) <= 2.0:
        problems.append(f"a dose of {float(dose_per_pixel):.3g} e-/px, where it was trained at {float(trained_dose):.3g}")
    if trained_pixel and pixel_size_A and not 0.8 <= float(pixel_size_A) / float(trained_pixel) <= 1.25:
        problems.append(f"{float(pixel_size_A):.3g} Å pixels, where it was trained on {float(trained_pixel):.3g} Å")
    if problems:
        warnings.warn(f"{source or 'the data'}: this network is applied outside the regime it was trained in: "
                      + "; ".join(problems) + ". Its output is not to be trusted there: retrain it at this dose "
                      "and pixel size (notebook 05), or bin the movie to its pixels", TemnbWarning, stacklevel=3)
    return problems


def denoise(data, model, *, device="auto", tile=None, overlap=None, batch_size=None, dose=None,
            pixel_size_A=None, threads="auto", ensemble=1, progress=True, name=None, out=None,
            overwrite=False):
    """Denoise a frame (H, W) or a movie (T, H, W) with a trained network.

    *model* is a network or a model-folder path.  *dose* (electrons per pixel
    per frame) defaults to ``metadata.temnb.dose_per_pixel``, else the data mean.
    *tile*: tile size in pixels (default: the whole frame if it has at most
    1024^2 pixels on CPU / 2048^2 on CUDA, else 512); *overlap*: tile overlap
    (default min(receptive_field // 2, tile // 4)).  *batch_size*: frames or tiles
    per forward pass (default 16 on CUDA; on a CPU 4 for frames up to 512^2, fewer for
    larger ones, so that a 1024^2 frame goes one at a time).  *threads* (CPU only): ``"auto"``
    (:func:`temnb.core.device.choose_threads`: TEMNB_THREADS, else every usable core) or a number;
    with 2 or more, batches of frames run side by side, one torch thread each (on 2 idle cores WCVD
    ran 1.6x faster than on one; ``benchmarks/bench_threads.py`` measures it).  *ensemble*: 1 (default),
    4 or 8 -- the mean of the network's output over the 4 quarter turns (and their mirror images)
    of the frames, undone after each pass: a self-ensemble that costs *ensemble* passes and removes
    the orientation bias of a network's filters.  A blind-spot network stays blind.  Returns the same kind as
    *data* (a signal keeps its axes and metadata and gains ``metadata.temnb.denoised``).

    A network whose config has a ``lowpass_cutoff`` (1/Å; WCVD, WCID) gets that ideal low-pass on
    each whole denoised frame, with the pixel size from the signal's calibration or *pixel_size_A*
    (Å, needed for arrays); a warning says when the cut-off removes the movie's strongest Bragg spots.
    A model whose card records the regime it was trained in (``model_card["regime"]``) warns when
    the movie's dose per pixel or pixel size lies outside it (:func:`warn_if_outside_regime`).

    A lazy movie (``temnb.load(path, lazy=True)``) is denoised in time blocks, each read with the
    ``temporal_window // 2`` frames on either side a video network needs (:mod:`temnb.io.streaming`),
    so the memory stays bounded whatever the movie's length; the dose is fixed once for the whole movie
    (the metadata's, else the mean over all frames, summed block by block).  The result is lazy, or
    written to *out* (``.hspy``/``.mrc``) block by block and returned loaded lazily.
    """
    from tqdm.auto import tqdm

    from ..core.device import choose_device
    from ..io.streaming import is_lazy, map_frames, stream_sum

    target = out   # `out` is the name of the working array below
    if is_lazy(data):
        dev = choose_device(device)
        net, _, _ = _resolve_model(model, dev)
        if dose is None:
            dose = md.get(data, "dose_per_pixel")
        if dose is None:
            n = int(data.axes_manager.navigation_size or 1)
            dose = float(stream_sum(data).mean() / n) if data.data.ndim == 3 else float(data.data.mean().compute())
        kwargs = dict(device=dev, tile=tile, overlap=overlap, batch_size=batch_size, dose=dose,
                      pixel_size_A=pixel_size_A, threads=threads, ensemble=ensemble, progress=False, name=name)
        if isinstance(model, (str, Path)) and getattr(net, "model_folder", None) is None:
            net.model_folder = str(Path(model))    # loaded once; the provenance still names the folder
        return map_frames(lambda block: denoise(block, net, **kwargs),
                          data, reach=int(net.temporal_window) // 2, out=target, overwrite=overwrite,
                          progress=progress, desc="denoising")

    from ..core.device import choose_device
    from ..core.signals import source_label

    source = source_label(data, name)
    array, template = unwrap(data, name=name)
    require_image_data(array, source=source, what="denoising")
    dev = choose_device(device)
    dev_type = getattr(dev, "type", str(dev))
    net, folder, card = _resolve_model(model, dev)
    tw = int(net.temporal_window)
    sm = int(net.size_multiple)
    in_channels = getattr(getattr(net, "config", None), "in_channels", 1)
    if in_channels != 1:
        raise ParameterError(f"this network takes {in_channels} channels per frame; denoise needs 1")
    if tw > 1:
        require_movie(array, min_frames=tw, source=source, what=f"a network that reads {tw} frames at a time")
    dose_used = _choose_dose(dose, template, array, source)
    warn_if_outside_regime(card, dose_used, pixel_size_A or pixel_size_angstrom(template), source=source)
    cutoff = getattr(getattr(net, "config", None), "lowpass_cutoff", None)
    if cutoff is not None:
        pixel = _lowpass_pixel(pixel_size_A, template, source, cutoff)
        warn_if_cutoff_removes_lattice(array, cutoff, pixel, source=source)

    if isinstance(ensemble, bool) or ensemble not in (1, 4, 8):
        raise ParameterError(f"ensemble = {ensemble!r}; it must be 1, 4 (quarter turns) or 8 (and their mirrors)")
    if ensemble > 1:
        def one_pass(frames):
            with warnings.catch_warnings():  # what concerns the movie was said once, above
                warnings.simplefilter("ignore", TemnbWarning)
                return denoise(frames, net, device=dev, tile=tile, overlap=overlap, batch_size=batch_size,
                               dose=dose_used, pixel_size_A=pixel if cutoff is not None else pixel_size_A,
                               threads=threads, progress=False)

        result = np.zeros(array.shape, np.float32)
        transforms = [(k, flip) for flip in ((False, True) if ensemble == 8 else (False,)) for k in range(4)]
        for k, flip in tqdm(transforms, desc="self-ensemble", disable=not progress):
            frames = np.rot90(array, k, axes=(-2, -1))
            frames = frames[..., ::-1] if flip else frames
            out = one_pass(np.ascontiguousarray(frames))
            out = out[..., ::-1] if flip else out
            result += np.rot90(out, -k, axes=(-2, -1))
        result /= len(transforms)
        return _finish(result, template, net, folder, card, dose_used, source, ensemble)

    movie = array[None] if array.ndim == 2 else array
    n_frames, height, width = movie.shape
    hp, wp = _round_up(height, sm), _round_up(width, sm)

    if tile is None:
        limit = _WHOLE_FRAME_PIXELS["cuda" if dev_type == "cuda" else "cpu"]
        tile = max(hp, wp) if hp * wp <= limit else _DEFAULT_TILE
    tile = _round_up(positive_int("tile", tile, 1), sm)
    if overlap is None:
        overlap = _round_up(min(int(net.receptive_field) // 2, tile // 4), sm)
        overlap = min(overlap, (tile // 2) // sm * sm)  # keep a positive step between tiles
    else:
        overlap = _round_up(positive_int("overlap", overlap, 0), sm)
    if overlap >= tile:
        raise ParameterError(f"overlap ({overlap} px) must be smaller than the tile ({tile} px)")
    batch_size_given = batch_size
    if batch_size is None:
        # On a CPU the activations of large frames dominate memory (a 5-frame UDVD needs about
        # 6 GB per 1024^2 frame): 4 frames of up to 512^2, fewer as the tiles grow, at least 1.
        tile_pixels = min(tile, hp) * min(tile, wp)
        batch_size = 16 if dev_type == "cuda" else max(1, min(4, (4 * 512 * 512) // tile_pixels))
    batch_size = positive_int("batch_size", batch_size)

    # Reflect-pad space up to the size multiple (and at least one tile).
    th, tw_ = min(tile, hp), min(tile, wp)
    # Counts are divided by the dose batch by batch (in torch), so the movie is copied at most once.
    padded = movie.astype(np.float32, copy=False)
    if (hp, wp) != (height, width):
        padded = np.pad(padded, ((0, 0), (0, hp - height), (0, wp - width)), mode="reflect")
    # Sliding windows of tw frames in time, reflected at the ends.
    half = tw // 2
    time_index = np.pad(np.arange(n_frames), (half, half), mode="reflect")

    ys, xs = tile_starts(hp, th, overlap), tile_starts(wp, tw_, overlap)
    wy, wx = tile_weights(hp, ys, th, overlap), tile_weights(wp, xs, tw_, overlap)
    jobs = [(t, i, j) for t in range(n_frames) for i in range(len(ys)) for j in range(len(xs))]
    n_workers = choose_threads(threads) if dev_type == "cpu" else 1
    # Each worker holds its own batch's activations: side by side only where they are small (tiles
    # up to 512^2, or a network that infers in cache-sized bands, like WCVD); a 5-frame UDVD on a
    # 1024^2 frame holds about 5.5 GB, and two of them would not fit a laptop.  Otherwise the
    # threads go to torch, within one batch.
    if n_workers > 1 and not (getattr(net, "low_memory_inference", False) or th * tw_ <= 512 * 512):
        n_workers = 1
    if n_workers > 1 and batch_size_given is None:
        # The workers share the batch (the same frames in flight, so the same memory), and there are
        # enough batches to keep each of them busy.
        batch_size = max(1, min(batch_size // n_workers, -(-len(jobs) // n_workers)))
    out = np.zeros((n_frames, hp, wp), np.float32)
    whole_frame, weights = len(ys) == 1 and len(xs) == 1, {}
    with warnings.catch_warnings():  # read-only input (a memory map) is fine: it is only indexed, which copies
        warnings.filterwarnings("ignore", message=".*not writable.*")
        frames = torch.from_numpy(np.ascontiguousarray(padded))

    def forward(chunk):
        """The denoised tiles of one batch of jobs, as a numpy array (len(chunk), th, tw_)."""
        # Each frame the batch reads crosses to the device once, however many of its windows read
        # it (5 for UDVD); the windows are then gathered on the device.
        needed = np.unique(np.concatenate([time_index[t:t + tw] for t, _, _ in chunk]))
        slot = {int(k): p for p, k in enumerate(needed)}
        with torch.inference_mode():  # thread-local: entered in the thread that computes
            block = frames[torch.from_numpy(needed)].to(dev).div_(float(dose_used))  # a copy
            windows = torch.tensor([[slot[int(k)] for k in time_index[t:t + tw]] for t, _, _ in chunk],
                                   device=block.device)
            if whole_frame:
                x = block[windows]
            else:
                x = torch.stack([block[windows[k], ys[i]:ys[i] + th, xs[j]:xs[j] + tw_]
                                 for k, (t, i, j) in enumerate(chunk)])
            if dev_type == "cuda":
                with torch.autocast("cuda", dtype=torch.bfloat16):  # as in training
                    y = net(x)
            else:
                y = net(x)
            return y[:, 0].float().mul_(float(dose_used)).cpu().numpy()

    def accumulate(chunk, y):
        for k, (t, i, j) in enumerate(chunk):
            if whole_frame:  # one tile: its blending weight is 1 everywhere
                out[t] = y[k]
            else:
                if (i, j) not in weights:
                    weights[i, j] = np.outer(wy[i], wx[j]).astype(np.float32)
                out[t, ys[i]:ys[i] + th, xs[j]:xs[j] + tw_] += weights[i, j] * y[k]

    chunks = [jobs[b0:b0 + batch_size] for b0 in range(0, len(jobs), batch_size)]
    workers = min(n_workers, len(chunks))
    was_training = net.training
    net.eval()
    param = next(net.parameters(), None)
    if param is not None and param.device != torch.device(dev):
        net.to(dev)
    try:
        bar = tqdm(total=len(chunks), desc="denoising", unit="batch", disable=not progress)
        if workers <= 1:
            with torch_threads(threads if dev_type == "cpu" else "auto"):
                for chunk in chunks:
                    accumulate(chunk, forward(chunk))
                    bar.update()
        else:
            # One torch thread per worker, each on its own batch of frames: the convolutions of these
            # small networks do not split well across threads (2 intra-op threads ran WCVD at half the
            # speed of one), whole batches do.  Results are blended here, in order, in one thread.
            with torch_threads(1), ThreadPoolExecutor(workers, thread_name_prefix="temnb-denoise") as pool:
                pending = deque()
                for chunk in chunks:
                    pending.append((chunk, pool.submit(forward, chunk)))
                    if len(pending) > 2 * workers:  # bounded look-ahead: memory stays a few batches
                        done, future = pending.popleft()
                        accumulate(done, future.result())
                        bar.update()
                while pending:
                    done, future = pending.popleft()
                    accumulate(done, future.result())
                    bar.update()
        bar.close()
    finally:
        net.train(was_training)

    result = out if (hp, wp) == (height, width) else np.ascontiguousarray(out[:, :height, :width])
    if cutoff is not None:
        result = fft_lowpass(result, cutoff, pixel).astype(np.float32)
    if array.ndim == 2:
        result = result[0]
    finished = _finish(result, template, net, folder, card, dose_used, source, ensemble)
    if target is not None:
        from ..io.files import save

        save(finished, target, overwrite=overwrite)
    return finished


def _finish(result, template, net, folder, card, dose_used, source, ensemble):
    """Check the denoised array and, for a signal, wrap it with the input's axes and a provenance."""
    if not np.all(np.isfinite(result)):
        raise DataValueError(
            "the network produced NaN or infinite values", source=source,
            hint="check the model (was it trained?) and the dose",
        )
    if template is None:
        return result
    config = getattr(net, "config", None)
    arch = getattr(config, "architecture", type(net).__name__)
    old_title = template.metadata.get_item("General.title", "") or ""
    signal = rewrap(result, template, title=f"{old_title} (denoised: {arch})".strip(),
                    quantity="Electrons (denoised)")
    provenance = {
        "architecture": arch,
        "config": config.to_dict() if hasattr(config, "to_dict") else {},
        "model_folder": folder,
        "trained_on": card.get("training_data", card.get("trained_on")),
        "dose_used": float(dose_used),
        "ensemble": int(ensemble),
    }
    md.set(signal, "denoised", provenance)
    # A video network reads temporal_window // 2 frames on each side: uPSNR needs references beyond.
    reach = int(md.get(template, "temporal_reach", 0) or 0) + int(getattr(net, "temporal_window", 1)) // 2
    if reach:
        md.set(signal, "temporal_reach", reach)
    return signal
