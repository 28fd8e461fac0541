"""The recipes that rebuild the shipped detectors (``maskwatch train mobile`` / ``server``)."""

from __future__ import annotations

from .loop import DetectorRecipe

DETECTORS = {
    # mobile: 180k parameters, 0.8 MB, from scratch on 320 px crops; run at 800 px (chosen on
    # validation within the 15 ms budget)
    "mobile": DetectorRecipe(name="mobile", width=1.0, size=320, epochs=24, batch=32, lr=3e-3, seed=0, input_size=800),
    # the server's detector: the mobile one trained 10 epochs more on larger crops at a lower rate,
    # with masks (worn right, below the nose, on the chin) and hands drawn on bare and unlabelled
    # faces, so that the class head sees every kind of mask and WIDER's crowds teach it too. The
    # server model runs it at 960 px with test-time flip and re-labels its faces with the crop
    # classifiers (see ClassifierRecipe and pipeline.SERVER_SETTINGS).
    "server-det": DetectorRecipe(
        name="server-det",
        width=1.0,
        size=384,
        epochs=10,
        batch=32,
        lr=1e-3,
        seed=1,
        input_size=960,
        init_from="mobile",
        paste=0.25,
        val_every=5,
    ),
    # the same network trained 12 epochs more (a warm restart at a lower rate): both validation
    # sets were still rising at the end of server-det
    "server-det2": DetectorRecipe(
        name="server-det2",
        width=1.0,
        size=384,
        epochs=12,
        batch=32,
        lr=7e-4,
        seed=2,
        input_size=960,
        init_from="server-det",
        paste=0.25,
        val_every=6,
    ),
    # and 12 more at a lower rate again (stage 3 still gained on WIDER between its epochs 6 and 12)
    "server-det3": DetectorRecipe(
        name="server-det3",
        width=1.0,
        size=384,
        epochs=12,
        batch=32,
        lr=5e-4,
        seed=3,
        input_size=960,
        init_from="server-det2",
        paste=0.25,
        val_every=6,
    ),
    # and 12 more, its class head also taught by the crop classifier's sure labels on faces that
    # have none (WIDER's crowds), with Kaggle's pictures of masks worn wrong drawn three times as often
    "server-det4": DetectorRecipe(
        name="server-det4",
        width=1.0,
        size=384,
        epochs=12,
        batch=32,
        lr=4e-4,
        seed=4,
        input_size=960,
        init_from="server-det3",
        paste=0.25,
        val_every=6,
        rare_repeat=2,
        pseudo_from="server_fvcls",
    ),
    # and 12 more the same way at a lower rate (stage 5's class loss was still falling at its end)
    "server-det5": DetectorRecipe(
        name="server-det5",
        width=1.0,
        size=384,
        epochs=12,
        batch=32,
        lr=3e-4,
        seed=5,
        input_size=960,
        init_from="server-det4",
        paste=0.25,
        val_every=6,
        rare_repeat=2,
        pseudo_from="server_fvcls",
    ),
}

# YuNet-n's network and weights (../shared/teachers, Apache-2.0) with a mask-class branch: one epoch
# teaches only the new class branch, so YuNet's face finding stays exactly as trained on all of WIDER
# FACE train (the server's detector). ``freeze="backbone"`` with ``base_lr_scale`` lets the neck and
# heads adapt too (the next step for a one-graph mobile model, see models/server.md).
DETECTORS["yunet-cls"] = DetectorRecipe(
    name="yunet-cls",
    arch="YuNetMask",
    teacher_init=True,
    freeze="base",
    size=320,
    epochs=1,
    batch=16,
    lr=3e-3,
    seed=10,
    input_size=640,
    val_every=1,
    rare_repeat=2,
)
