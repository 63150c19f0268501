"""pyhf's ``simplemodels``: one-channel signal + background models."""

from .workspace import Model

__all__ = ["uncorrelated_background", "correlated_background"]


def uncorrelated_background(signal, bkg, bkg_uncertainty, batch_size=None, validate=True):
    """Signal (normfactor ``mu``) over a background with an uncorrelated
    per-bin absolute uncertainty (shapesys ``uncorr_bkguncrt``), as pyhf."""
    spec = {
        "channels": [
            {
                "name": "singlechannel",
                "samples": [
                    {
                        "name": "signal",
                        "data": [float(x) for x in signal],
                        "modifiers": [{"name": "mu", "type": "normfactor", "data": None}],
                    },
                    {
                        "name": "background",
                        "data": [float(x) for x in bkg],
                        "modifiers": [
                            {
                                "name": "uncorr_bkguncrt",
                                "type": "shapesys",
                                "data": [float(x) for x in bkg_uncertainty],
                            }
                        ],
                    },
                ],
            }
        ]
    }
    return Model(spec, poi_name="mu")


def correlated_background(signal, bkg, bkg_up, bkg_down, batch_size=None, validate=True):
    """Signal (normfactor ``mu``) over a background with a correlated shape
    uncertainty (histosys ``correlated_bkg_uncertainty``), as pyhf."""
    spec = {
        "channels": [
            {
                "name": "single_channel",
                "samples": [
                    {
                        "name": "signal",
                        "data": [float(x) for x in signal],
                        "modifiers": [{"name": "mu", "type": "normfactor", "data": None}],
                    },
                    {
                        "name": "background",
                        "data": [float(x) for x in bkg],
                        "modifiers": [
                            {
                                "name": "correlated_bkg_uncertainty",
                                "type": "histosys",
                                "data": {
                                    "hi_data": [float(x) for x in bkg_up],
                                    "lo_data": [float(x) for x in bkg_down],
                                },
                            }
                        ],
                    },
                ],
            }
        ]
    }
    return Model(spec, poi_name="mu")
