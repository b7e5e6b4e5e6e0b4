"""Tiny seeded data for the explorers' notebook (tests/explorers_demo.ipynb), its browser test
(tests/test_widgets_browser.py) and docs/make_screenshots.py: each of them builds the same networks
and movies from here, so that the test can compute in its own process what the page must print."""
from __future__ import annotations

import numpy as np

FILTER_DOSE = 3.0
#: Keyword arguments of the EffectiveFilterExplorer in the notebook.
FILTER_OPTIONS = {"dose": FILTER_DOSE, "half": 6, "pixel": (4, 4), "device": "cpu"}
#: Fixed columns of the likelihood demo (row, col), and the explorer's keyword arguments.
COLUMNS = [[12.0, 12.0], [12.0, 36.0], [36.0, 12.0], [36.0, 36.0], [24.0, 24.0]]
LIKELIHOOD_OPTIONS = {"columns": COLUMNS, "vacuum_level": 2.0}


def filter_demo():
    """(model, movie): an untrained bias-free UDVD (a video network: five input frames) and 6
    frames of 32 x 32 Poisson counts at 3 e-/px."""
    from temnb.nets.config import UDVDConfig
    from temnb.nets.registry import build_model

    model = build_model(UDVDConfig(channels=4, n_scales=2, blocks_per_scale=1), seed=0).eval()
    movie = np.random.default_rng(0).poisson(FILTER_DOSE, (6, 32, 32)).astype(np.float32)
    return model, movie


def likelihood_demo():
    """(noisy, denoised): a 4-frame counted lattice movie (48 x 48 px, 2 e-/px) and its truth,
    standing in for a denoised movie."""
    from temnb.simulation import synthetic

    return synthetic.counted_movie(4, (48, 48), dose=2.0, seed=1)
