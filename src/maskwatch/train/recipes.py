"""The recipes that rebuild the shipped detectors (``maskwatch train mobile`` / ``server``)."""

from __future__ import annotations

import copy

from .loop import DetectorRecipe

# what every stage after the first shares: 384 px crops, batch 32, drawn masks and hands on a
# quarter of the bare faces, validated at 960 px
_LATER = {"width": 1.0, "size": 384, "batch": 32, "input_size": 960, "paste": 0.25}
# stages 5 and 6 also learn from the crop classifier's sure labels, the rare class drawn thrice
_PSEUDO = {"rare_repeat": 2, "pseudo_from": "server_fvcls"}


def _stage(name: str, after: str, epochs: int, lr: float, seed: int, every: int, **more) -> DetectorRecipe:
    """A stage that continues the recipe ``after`` with the shared settings of the later stages."""
    return DetectorRecipe(
        name=name, init_from=after, epochs=epochs, lr=lr, seed=seed, val_every=every, **_LATER, **more
    )


DETECTORS = {
    # mobile: from scratch on 320 px crops; run at 800 px (chosen on validation within the speed
    # budget: the model card has the figures)
    "mobile": DetectorRecipe(name="mobile", width=1.0, size=320, epochs=24, batch=32, lr=3e-3, seed=0, input_size=800),
    # the mobile network trained 10 epochs more on larger crops at a lower rate, with masks (worn
    # right, below the nose, on the chin) and hands drawn on bare and unlabelled faces, so that the
    # class head sees every kind of mask and WIDER's crowds teach it too (the server's detector
    # until the YuNet-n release)
    "server-det": _stage("server-det", "mobile", 10, 1e-3, 1, 5),
    # the same network trained 12 epochs more (a warm restart at a lower rate): both validation
    # sets were still rising at the end of server-det
    "server-det2": _stage("server-det2", "server-det", 12, 7e-4, 2, 6),
    # and 12 more at a lower rate again (stage 3 still gained on WIDER between its epochs 6 and 12)
    "server-det3": _stage("server-det3", "server-det2", 12, 5e-4, 3, 6),
    # and 12 more, its class head also taught by the crop classifier's sure labels on faces that
    # have none (WIDER's crowds), with Kaggle's pictures of masks worn wrong drawn three times as often
    "server-det4": _stage("server-det4", "server-det3", 12, 4e-4, 4, 6, **_PSEUDO),
    # and 12 more the same way at a lower rate (stage 5's class loss was still falling at its end)
    "server-det5": _stage("server-det5", "server-det4", 12, 3e-4, 5, 6, **_PSEUDO),
}

# what the YuNet-n recipes share: its network with the mask-class branch, 320 px crops, batch 16,
# validated at 640 px every epoch, Kaggle's pictures with a mask worn wrong drawn three times
_YUNET = {"arch": "YuNetMask", "size": 320, "batch": 16, "input_size": 640, "val_every": 1, "rare_repeat": 2}
# and the fine-tuning ones: stem and stages 1-2 frozen, YuNet-n's layers at 0.15 x the rate, the
# starting network's scores and boxes as distillation targets, padded with 0 as YuNet-n was trained
_FINE = {"freeze": "early", "base_lr_scale": 0.15, "distill": 1.0, "export_meta": {"pad_value": 0}}

# YuNet-n's network and weights (../shared/teachers, Apache-2.0) with a mask-class branch: one epoch
# teaches only the new class branch, so YuNet's face finding stays exactly as trained on all of WIDER
# FACE train (the server's detector).
DETECTORS["yunet-cls"] = DetectorRecipe(
    name="yunet-cls", teacher_init=True, freeze="base", epochs=1, lr=3e-3, seed=10, **_YUNET
)

# YuNet-n fine-tuned whole but its stem and first two stages (the high-resolution layers keep the
# teacher's weights), on maskwatch's mix with faces down to 6 px: the class branch learns on
# features that may now adapt to masks, and the face score and boxes learn from the ground truth
# (WIDER's exhaustive crowd labels, Kaggle's masked faces) while the starting network's own scores
# and boxes on the same crops hold them near YuNet-n (``distill``). The pretrained layers learn at
# 0.15 x the new branch's rate.
DETECTORS["yunet-ft"] = DetectorRecipe(
    name="yunet-ft", teacher_init=True, epochs=10, lr=2e-3, seed=11, **_YUNET, **copy.deepcopy(_FINE)
)


def _yunet_after(name: str, after: str, epochs: int, lr: float, seed: int, **more) -> DetectorRecipe:
    """A YuNet-n fine-tuning recipe that continues ``after``, its class branch also taught by the crop
    classifier's sure labels on the faces that have none."""
    return DetectorRecipe(
        name=name,
        init_from=after,
        pseudo_from="server_fvcls",
        epochs=epochs,
        lr=lr,
        seed=seed,
        **{**_YUNET, **copy.deepcopy(_FINE), **more},  # ``more`` overrides the shared settings
    )


# yunet-ft trained 6 epochs more (a warm restart at half the rate), its class branch also taught by
# the crop classifier's sure labels on the faces that have none (WIDER's crowds; as server-det4/5):
# the mobile model's detector
DETECTORS["yunet-ft2"] = _yunet_after("yunet-ft2", "yunet-ft", 6, 1e-3, 12)

# issue 29: the mobile detector (yunet-ft2) trained on masked faces at every covering and angle:
# caps, hoods, hazmat hoods, goggles and sunglasses drawn on 30 % of the faces, 30 % of the crops
# turned (up to 45 degrees, a fifth of them 90 or 180), masks drawn on a quarter of the bare faces,
# webmask2020's training part added and the held-out validation parts left out (loop.masked_sources),
# the starting network's scores and boxes as targets so that WIDER's crowds hold; at the end its
# weights averaged half and half with yunet-ft2's (blend: alone it lost a point of Kaggle mAP and
# WIDER face AP; blended it keeps both and most of the covered faces won: models/mobile.md)
_MASKED = {"paste": 0.25, "cover": 0.3, "rotate": 0.3, "mix": "masked"}
DETECTORS["yunet-masked"] = _yunet_after("yunet-masked", "yunet-ft2", 8, 7e-4, 13, **_MASKED, blend=0.5)
# the same training (yunet-masked's run, not trained again: weights_of), 70 % of the trained weights
# kept instead of half: more of the covered faces won (masked under a drawn covering +3 to +6 points),
# a little of Kaggle's bare faces and WIDER face AP given back (models/mobile.md); the mobile detector
# since 2026-12-06 evening. The server keeps yunet-masked: its crop classifiers were trained on that
# network's mistakes
DETECTORS["yunet-masked7"] = _yunet_after(
    "yunet-masked7", "yunet-ft2", 8, 7e-4, 13, **_MASKED, blend=0.3, weights_of="yunet-masked"
)

# issue 29 again (2026-12-07 evening): yunet-masked7 trained 8 epochs more on the masked mix with the
# teacher's score a floor, not a target, on the labelled faces (``distill_floor``): YuNet-n scores a
# masked face under a hood, or one turned 30 degrees, low, and the two-way pull held those faces back
# while the labels pushed them up. More of the crops turned (45 %) and covered (35 %); still distilled
# toward YuNet-n everywhere else, so that WIDER's crowds hold
_FLOOR = {**_MASKED, "cover": 0.35, "rotate": 0.45, "distill_floor": True}
DETECTORS["yunet-floor"] = _yunet_after("yunet-floor", "yunet-masked7", 8, 7e-4, 16, **_FLOOR, val_every=4)
# the same with the distillation twice as strong (seed 17): more precision and WIDER face AP, fewer
# of Kaggle's faces and of the close-ups (models/mobile.md)
DETECTORS["yunet-floor2"] = _yunet_after(
    "yunet-floor2", "yunet-masked7", 8, 7e-4, 17, **_FLOOR, distill=2.0, val_every=8
)
# a third of the kind (seed 18) with more of its crops turned (60 %), for the turned faces that the
# floor's two left behind (30 degrees: 7 to 16 points of recall under the pictures as they are)
DETECTORS["yunet-floor3"] = _yunet_after(
    "yunet-floor3", "yunet-masked7", 8, 7e-4, 18, **{**_FLOOR, "rotate": 0.6}, val_every=8
)
# mobile's detector since 2026-12-07 evening: a soup of the two, 3/4 yunet-floor and 1/4
# yunet-floor2 (weight averaging of two fine-tunings from one start): yunet-floor's covered and
# turned faces with WIDER face AP held at 0.69 (alone 0.689; half and half lost Kaggle's faces)
DETECTORS["yunet-floor-soup"] = DetectorRecipe(
    name="yunet-floor-soup", arch="YuNetMask", epochs=0, soup={"yunet-floor": 0.75, "yunet-floor2": 0.25}
)

# issue 32: mobile's network (yunet-masked7's weights) in the lighter layout, stage 2's two 64-channel
# units at stride 8 (``YuNetMaskLite``, 0.8x the time of YuNet-n's layout), trained again so that its later layers
# learn the coarser features: the stem and stage 1 keep their weights, every other layer learns at
# 0.6 x the rate, with yunet-masked7 itself (in YuNet-n's layout) as the distillation teacher.
# Tried, not shipped: as mobile 1.19x YuNet-n against 1.60x, but WIDER val part face AP 0.606 against
# 0.691 (docs/speed.md)
DETECTORS["yunet-lite"] = _yunet_after(
    "yunet-lite",
    "yunet-masked7",
    6,
    1e-3,
    14,
    **_MASKED,
    arch="YuNetMaskLite",
    freeze="stem",
    base_lr_scale=0.6,
    distill_from="init",
    val_every=3,
)

# issue 32 again: stage 2 narrower instead of moved (``YuNetMaskNarrow``: 32 channels until its last
# unit, 0.83x the time of YuNet-n's layout), so that the stride-8 head still reads features made at stride 4.
# Its new units are first taught alone to give yunet-masked7's stage-2 features (``mimic_epochs``),
# then the whole network but the stem and stage 1 learns as yunet-masked did (0.15 x the rate for the
# pretrained layers: at 0.6 x, WIDER val part face AP at 640 px was 0.504 after 3 epochs).
# Tried, not shipped: WIDER val part face AP at 640 px 0.513 against yunet-masked7's 0.611 (docs/speed.md)
DETECTORS["yunet-narrow"] = _yunet_after(
    "yunet-narrow",
    "yunet-masked7",
    6,
    1e-3,
    15,
    **_MASKED,
    arch="YuNetMaskNarrow",
    freeze="stem",
    base_lr_scale=0.15,
    distill_from="init",
    mimic_epochs=4,
    val_every=3,
)
