"""A neos-style blobs toy shared by the JAX and PyTorch training tests:
four 2-D Gaussian samples (signal, background nominal / up / down), a small
network whose output is histogrammed with a Gaussian-kernel soft histogram
(4 bins on [0, 1]), and the yields feeding anagrad's expected CLs on a
one-channel model with a histosys background variation."""

import numpy as np

import anagrad

N_BINS = 4
EDGES = np.linspace(0.0, 1.0, N_BINS + 1)
BANDWIDTH = 0.09
YIELDS = {"signal": 20.0, "bkg": 100.0}
MEANS = {"signal": (-1.0, 1.0), "bkg": (1.0, -1.0), "bkg_up": (2.5, 2.0), "bkg_down": (-2.5, -1.5)}


def samples(n=400, seed=7):
    rng = np.random.default_rng(seed)
    return {k: rng.normal(m, 1.0, size=(n, 2)) for k, m in MEANS.items()}


def model():
    ones = [1.0] * N_BINS
    return anagrad.simplemodels.correlated_background(ones, ones, ones, ones)


def keys():
    ch = "single_channel"
    return [
        (ch, "signal", None, "nominal"),
        (ch, "background", None, "nominal"),
        (ch, "background", "correlated_bkg_uncertainty", "hi_data"),
        (ch, "background", "correlated_bkg_uncertainty", "lo_data"),
    ]


def weight(name, n):
    return (YIELDS["signal"] if name == "signal" else YIELDS["bkg"]) / n
