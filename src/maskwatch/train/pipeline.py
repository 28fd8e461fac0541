"""One command per shipped model: train, calibrate the face score, choose the default threshold, install.

``maskwatch train mobile``      one graph that finds faces and labels them, ``models/mobile.onnx``:
                                YuNet-n fine-tuned with a mask-class branch, the detector recipes
                                ``yunet-ft`` -> ``yunet-ft2`` in turn (the second learns from the crop
                                classifier's pseudo-labels, so that is trained first), its input the
                                picture's own size; that crop classifier also labels the faces the
                                graph is unsure of (a cascade in the Python runtime, no veto)
``maskwatch train classifier``  the server's second-stage crop classifier (``SERVER_CLASSIFIERS``)
``maskwatch train server``      the server model: mobile's network (``yunet-ft2``) at 1.5 times the
                                picture's size with test-time flip, its faces labelled by the crop
                                classifier, which also vetoes non-faces (trains what is missing)
"""

from __future__ import annotations

import copy
import shutil
from pathlib import Path
from dataclasses import replace

import numpy as np

from ..evaluation.datasets import load_dataset
from ..core.detector import Detector
from ..core.registry import VERIFY_WEIGHT
from ..models import MODEL_DIR
from ..core.registry import read_metadata as read_meta
from ..core.errors import MaskwatchError
from ..evaluation.metrics import best_f1_threshold
from ..evaluation.run import run_eval
from .classifier import ClassifierRecipe, train_classifier
from ..export import write_metadata
from .loop import default_sources, reblend_detector, soup_detector, train_detector
from .recipes import DETECTORS

# crop classifier recipes (each can be trained by name: ``maskwatch train server_fvcls``)
CLASSIFIERS = {
    # mask classes only (the first server release's classifier)
    "server_cls": ClassifierRecipe(name="server_cls", seed=0, synth=0.3),
    # also a background class, learnt from server-det's mistakes on training pictures (a veto on non-faces)
    "server_vcls": ClassifierRecipe(name="server_vcls", seed=0, synth=0.3, background=0.25),
    # and WIDER's faces as faces (no mask label), so that turned, blurred and crowd faces are not vetoed
    "server_fvcls": ClassifierRecipe(name="server_fvcls", seed=0, synth=0.3, background=0.25, faces=0.15),
    # and WIDER's faces drawn evenly over sizes: close-ups, rare in WIDER, were being vetoed
    "server_fvcls2": ClassifierRecipe(
        name="server_fvcls2", seed=0, synth=0.3, background=0.25, faces=0.15, faces_by_size=True
    ),
    # server_fvcls with its non-faces mined from the mistakes of the detector it now runs behind
    # (server_fvcls's were mined with server-det, three stages earlier)
    "server_fvcls3": ClassifierRecipe(
        name="server_fvcls3", seed=0, synth=0.3, background=0.25, faces=0.15, mine_with="server-det5"
    ),
    # server_fvcls with drawn caps, hoods, hazmat hoods, goggles and sunglasses on a quarter of its faces
    # (issue 29: the veto took covered masked faces for background), non-faces mined from the mistakes
    # of the mobile network
    "server_cvcls": ClassifierRecipe(
        name="server_cvcls", seed=0, synth=0.3, background=0.25, faces=0.15, mine_with="yunet-masked", cover=0.25
    ),
}
# server_cvcls with 30 % of its crops (non-faces too) turned: up to +-45 degrees, 90 or 180 (the veto
# took turned faces for background; alone it cost precision and label safety, averaged with
# server_cvcls it keeps most of its turned faces: models/server.md)
CLASSIFIERS["server_cvcls2"] = replace(CLASSIFIERS["server_cvcls"], name="server_cvcls2", turn=0.3)
# server_fvcls (mobile's cascade) at two thirds of its width: 0.44x its multiply-adds a crop, for a
# cascade that costs less (issue 32); non-faces mined from the mistakes of mobile's own network.
# Tried, not shipped: 0.37 ms a crop against 0.60, but Kaggle val mAP 0.788 against 0.806 in mobile's
# cascade and more hands over mouths called mask (docs/speed.md)
CLASSIFIERS["mobile_cls"] = replace(
    CLASSIFIERS["server_fvcls"], name="mobile_cls", width=1.0, mine_with="yunet-floor-soup"
)
# mobile_cls taught server_fvcls's probabilities on each crop beside the labels (distillation). Tried,
# not shipped: Kaggle val mAP 0.808 against 0.806 and 4 hands over mouths of 220 called mask against
# 7, but turned and covered faces' labels worse on some sets (it never saw a turned crop: docs/speed.md)
CLASSIFIERS["mobile_cls2"] = replace(CLASSIFIERS["mobile_cls"], name="mobile_cls2", distill_from="server_fvcls")
# mobile_cls2 with server_cvcls2's turned and covered crops. Tried, not shipped: turned labels up, but
# 11 hands over mouths of 220 called mask against 7 (docs/speed.md)
CLASSIFIERS["mobile_cls3"] = replace(CLASSIFIERS["mobile_cls2"], name="mobile_cls3", cover=0.25, turn=0.3)
# mobile_cls2 with turned crops only (no drawn coverings, which taught mobile_cls3 that a covered mouth
# is a mask): mobile's cascade classifier since 2026-12-07 night (MOBILE_CLASSIFIERS below)
CLASSIFIERS["mobile_cls4"] = replace(CLASSIFIERS["mobile_cls2"], name="mobile_cls4", turn=0.3)
# mobile_cls4 with drawn coverings on a tenth of its faces (mobile_cls3 had a quarter). Tried, not shipped:
# covered labels up, but Kaggle val mAP 0.799 and 9 hands over mouths of 220 called mask (models/mobile.md)
CLASSIFIERS["mobile_cls5"] = replace(CLASSIFIERS["mobile_cls4"], name="mobile_cls5", cover=0.1)
# mobile_cls4 trained again from another seed: how far its figures move by chance (Kaggle val mAP 0.823,
# but 10 hands of 220 called mask against 7; not shipped)
CLASSIFIERS["mobile_cls4b"] = replace(CLASSIFIERS["mobile_cls4"], name="mobile_cls4b", seed=1)
# mobile_cls4 with synthetic masks and hands on 45 % of its bare faces (30 %). Tried, not shipped: Kaggle
# val mAP 0.819, 7 hands of 220 called mask, but webmask2020's covered labels 0.893 against 0.918
CLASSIFIERS["mobile_cls6"] = replace(CLASSIFIERS["mobile_cls4"], name="mobile_cls6", synth=0.45)
# the ones the server model averages (a second seed of server_cls averaged with it gave Kaggle val
# mAP 0.742 against 0.745 alone, so one is shipped; the comparison is in models/server.md);
# server_cvcls since it learnt drawn coverings (issue 29: server_fvcls's veto dropped covered faces),
# server_cvcls2 beside it for turned faces
SERVER_CLASSIFIERS = ["server_cvcls", "server_cvcls2"]
# the detector recipe each model runs: YuNet-n fine-tuned with its mask-class branch (recipes
# "yunet-ft", "yunet-ft2", then "yunet-masked" / "yunet-masked7", which differ in the share of
# yunet-ft2 blended back): alone in mobile; in server with flip, every face labelled and vetoed by
# the crop classifiers (the previous servers ran yunet-ft2, then yunet-cls, at a picture x1.5 input)
# yunet-masked7 (yunet-ft2 trained on covered and turned faces, 30 % of its start blended in) trained
# again with the teacher's score a floor on labelled faces, two distillation weights averaged (recipes.py)
MOBILE_DETECTOR = "yunet-floor-soup"
# the server: yunet-floor alone (the floor's training without the soup; its crop classifiers veto what
# the higher scores let through), its crop classifiers as they were (trained on yunet-masked's mistakes)
SERVER_DETECTOR = "yunet-floor"
# the runtime settings each model file carries: the input sized to the picture (its own long side x
# upscale, between min_input and max_input, tiles above), chosen on validation (see the model cards
# and benchmarks/input_sizes.py); input_size: what a fixed-size runtime (a phone app) uses; YuNet-n
# pads with 0. The zoom: a picture whose first pass finds faces under 12 px (network score >= 0.25)
# is run again 1.75x larger, up to 1920 px; a picture without small faces costs one pass. These are
# the server's passes, the first at the picture's own size; mobile's first pass is smaller (below)
PASSES = {
    "upscale": 1.0,
    "min_input": 640,
    "max_input": 1280,
    "input_size": 640,
    "flip": False,
    "pad_value": 0,
    "zoom": 1.75,
    "zoom_below": 12,
    "zoom_score": 0.25,
    "zoom_max_input": 1920,
    # and no more than twice the picture's own long side: a 400 px photo is enlarged to 800, not 1120
    # (Kaggle val mAP held; docs/speed.md)
    "zoom_max_scale": 2.0,
    # close-ups: a picture whose first pass finds a face (network score >= 0.1) of 200 px or more at
    # its input (bigger than the faces of the 320 px training crops) runs again at 224 px, and its
    # faces of 150 px or more come from there; the first pass keeps its own up to 250 px, both go to
    # the merge between (models/mobile.md, "Close-ups, second version"; 2026-12-07: faces over 300 px
    # 97-100 % found against 95-97 % at 320 px with the faces of 200 px or more from that pass alone)
    "shrink_input": 224,
    "shrink_above": 150,
    "shrink_trigger": 200,
    "shrink_score": 0.1,
    "shrink_keep_below": 250,
}
# mobile's first pass at 0.8x the picture (a 640x480 frame at 512 px: 0.65x the network's time), the
# zoom asked by faces under 15 px there (the 12 px of the picture's own size, and a little more) and
# reaching the same 1120 px for a 640x480 frame (512 x 2.1875): 1.07x YuNet-n's time against 1.41x,
# face AP held or rose on all four validation sets at 0.3-1.4 points less precision (issue 32;
# models/mobile.md, "A smaller first pass")
MOBILE_SETTINGS = {
    **PASSES,
    "upscale": 0.8,
    "min_input": 512,
    "zoom": 2.1875,
    "zoom_below": 15,
    # a cascade: the server's crop classifier labels only the faces whose voted class is under 0.9,
    # blended 0.7, no veto (so the cascade leaves the face score the network's; Kaggle
    # val label accuracy 0.963 -> 0.974). Detector("mobile", classifier_below=0) turns it off
    "classifier_below": 0.9,
    # ... and the faces voted no_mask only under 0.8: a hand over a bare mouth is voted mask, so the
    # 0.9 line that keeps it from being called one stays theirs; the bare faces' own crops were 12 % of
    # the cascade's on issue 32's frames (models/mobile.md, "The cascade's two lines")
    "classifier_below_bare": 0.8,
    "classifier_weight": 0.7,
    "verify_weight": 0.0,
    "classifier_flip": False,
    # the rescue (issue 29): a face scored just under the threshold t (from t^(1/0.7) up), voted mask or
    # incorrect, 24 px or more, gets max(s, s^0.7 x P(face)^0.3) from MOBILE_RESCUE's background class
    # where P(face) >= 0.9: masked faces under
    # hoods, caps and goggles that the network doubts and the classifier does not (models/mobile.md,
    # "The rescue"; 0.1-0.4 crops a picture)
    "rescue": 0.3,
    "rescue_min_side": 24.0,
    "rescue_min_face": 0.9,  # lifted only where the classifier is 90 % sure: close-ups' textures stay down
    "rescue_input": 96,  # crops of 96 px, not the classifier's 128: 0.29 ms a face against 0.49
}
# the rescue's classifier (one of the server's two) and mobile's threshold with it: the best-F1
# choice (0.5806) moved up to hold precision where the rescue lifts faces (models/mobile.md)
MOBILE_RESCUE = "server_cvcls2"
MOBILE_THRESHOLD = 0.59
# the crop classifier the mobile model asks where it is unsure: since 2026-12-07 night mobile_cls4
# (server_fvcls distilled into two thirds of its width, with turned crops: 0.36 ms a crop against 0.60,
# Kaggle val mAP 0.814 against 0.806 on issue 29's measure, hands over mouths called mask 7 of 220 as
# before; models/mobile.md). Before it server_fvcls (the previous server's, trained anyway for the
# pseudo-labels of the detector recipes and now mobile_cls4's teacher); server_cvcls there gave Kaggle
# val mAP 0.743 against 0.752; mobile_cls, mobile_cls2, mobile_cls3, mobile_cls5, mobile_cls6 and
# mobile_cls4b (above) were tried
MOBILE_CLASSIFIERS = ["mobile_cls4"]
# the server: its network at the picture's own size (PASSES), run on the picture and its mirror image
# (flip), every face labelled by the crop classifiers, averaged (crops also mirrored), and vetoed where
# they see no face. At picture x1.5 (960-1920 px, the previous server) it cost 2.3x as much (models/server.md)
SERVER_SETTINGS = {
    **PASSES,
    "flip": True,
    "classifier_weight": 0.9,
    "verify_weight": VERIFY_WEIGHT,
    "classifier_flip": True,
    # a crop is also seen mirrored only where a classifier's top class is under 0.9: 10 % less time over
    # issue 32's 80 frames, the operating point unchanged, mAP 0.002 lower on the held-out sets (models/server.md)
    "classifier_flip_below": 0.9,
}


def calibrate_scores(path: Path, data: Path, threshold: float | None = None) -> dict:
    """Set the model's default threshold (best class-agnostic F1 on the validation sets, or
    ``threshold``, a face score, where the recipe fixes one) and scale its face score so that 0.6
    keeps all but 1 point of the best-F1 threshold's recall on each set
    (``maskwatch.core.calibration``); both stored in the file. Measured on the network's own scores:
    the rescue (``rescue``, whose band hangs on the threshold) is left out while it runs."""
    from ..core.calibration import calibrate, fit_calibration, keep_threshold
    from ..evaluation.metrics import pr_curve

    meta = read_meta(path)
    meta.pop("score_calibration", None)
    rescue = meta.pop("rescue", None)
    write_metadata(path, meta)
    _, val = default_sources(data)
    det = Detector(path, score_threshold=0.02)
    per_set = [run_eval(det, load_dataset(Path(r), Path(s)))[0] for r, s in val]
    default_raw, f1 = best_f1_threshold([r for rs in per_set for r in rs])
    keep = min(keep_threshold(sc, rec, default_raw) for rec, _, sc, _ in (pr_curve(rs, 0.5, None) for rs in per_set))
    knots = fit_calibration(default_raw, keep)
    meta["score_calibration"] = [knots[0], knots[1]]
    best = round(float(calibrate(np.array([default_raw]), knots)[0]), 4)
    meta["score_threshold"] = best if threshold is None else float(threshold)
    meta["threshold_f1"] = round(f1, 4)
    if threshold is not None:
        meta["threshold_best_f1"] = best
    if rescue is not None:
        meta["rescue"] = rescue
    meta["threshold_chosen_on"] = [f"{Path(r).name}/{Path(s).name}" for r, s in val]
    write_metadata(path, meta)
    return meta


def _install(files: list[Path]) -> None:
    for f in files:
        shutil.copy2(f, MODEL_DIR / f.name)


def _assemble(
    path: Path,
    det: Path,
    det_recipe: str,
    settings: dict,
    classifiers: list[Path],
    data: Path,
    install: bool,
    rescue: Path | None = None,
    threshold: float | None = None,
) -> Path:
    """A shipped model file at ``path`` from a trained detector: its runtime settings, its crop
    classifiers (and the rescue's, ``rescue_classifier``) beside it, its threshold chosen on validation (or
    fixed by the recipe); copied into the package on request."""
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(det, path)
    extra = classifiers + ([rescue] if rescue is not None else [])
    for cls in extra:
        shutil.copy2(cls, path.parent / cls.name)
    meta = read_meta(path)
    meta.update(settings)
    if classifiers:
        meta["classifier"] = [c.name for c in classifiers]
    if rescue is not None:
        meta["rescue_classifier"] = rescue.name
    meta["detector_from"] = det_recipe
    write_metadata(path, meta)
    calibrate_scores(path, data, threshold)  # the default threshold, and the face score's scale
    if install:
        _install([path] + [path.parent / c.name for c in extra])
    return path


def train_recipe_chain(name: str, data: Path, out: Path, epochs: int | None = None, resume: bool = True) -> Path:
    """A detector recipe's ONNX file: trained (or resumed) unless a finished run is there, after
    the recipe it continues (``init_from``) the same way."""
    recipe = copy.deepcopy(DETECTORS[name])
    if epochs and not recipe.soup:
        recipe.epochs = epochs
    done = out / name / f"{name}.onnx"
    if resume and done.is_file() and _finished(done.parent, recipe.epochs):
        return done
    if recipe.soup:  # no training of its own: its ingredients' files averaged
        files = {part: train_recipe_chain(part, data, out, None, resume) for part in recipe.soup}
        return soup_detector(recipe, files, out / name)
    if recipe.init_from:
        recipe.init = str(train_recipe_chain(recipe.init_from, data, out, None, resume))
    if recipe.pseudo_from:
        cls = out / recipe.pseudo_from / f"{recipe.pseudo_from}.onnx"
        recipe.pseudo = str(cls if cls.is_file() else run_recipe(recipe.pseudo_from, data, out, None, resume))
    if recipe.weights_of:  # another blend of a run trained once
        shared = train_recipe_chain(recipe.weights_of, data, out, None, resume)
        return reblend_detector(recipe, shared.parent, out / name)
    return train_detector(recipe, out / name, data, resume=resume)


def _finished(run_dir: Path, epochs: int) -> bool:
    import json

    log = run_dir / "log.jsonl"
    rows = [json.loads(x) for x in log.read_text().splitlines() if x.strip()] if log.is_file() else []
    return bool(rows) and rows[-1]["epoch"] >= epochs


def _classifiers(names: list[str], data: Path, out: Path, resume: bool) -> list[Path]:
    """The crop classifier files of ``names``: trained ones as they are, the rest trained now."""
    paths = []
    for cname in names:
        cls = out / cname / f"{cname}.onnx"
        paths.append(cls if cls.is_file() else run_recipe(cname, data, out, None, resume, install=False))
    return paths


def run_recipe(
    name: str, data: Path, out: Path, epochs: int | None = None, resume: bool = True, install: bool = False
) -> Path:
    data, out = Path(data), Path(out)
    if not data.is_dir():
        raise MaskwatchError(f"{data}: training data folder not found (see ../shared/data/README.md)")
    if name == "classifier":  # the crop classifiers of the server model
        return [run_recipe(c, data, out, epochs, resume, install) for c in SERVER_CLASSIFIERS][0]
    if name == "mobile":
        det = train_recipe_chain(MOBILE_DETECTOR, data, out, epochs, resume)
        classifiers = _classifiers(MOBILE_CLASSIFIERS, data, out, resume)
        (rescue,) = _classifiers([MOBILE_RESCUE], data, out, resume)
        return _assemble(
            out / "mobile-model" / "mobile.onnx",
            det,
            MOBILE_DETECTOR,
            MOBILE_SETTINGS,
            classifiers,
            data,
            install,
            rescue=rescue,
            threshold=MOBILE_THRESHOLD,
        )
    if name in DETECTORS:  # a part of the server model, e.g. server-det
        return train_recipe_chain(name, data, out, epochs, resume)
    if name in CLASSIFIERS:
        recipe = copy.deepcopy(CLASSIFIERS[name])
        if epochs:
            recipe.epochs = epochs
        detector = train_recipe_chain(recipe.mine_with, data, out, None, resume) if recipe.background > 0 else None
        if recipe.distill_from in CLASSIFIERS:  # the teacher from this training folder, trained first if missing
            (teacher,) = _classifiers([recipe.distill_from], data, out, resume)
            recipe.distill_from = str(teacher)
        path = train_classifier(recipe, out / name, data, resume=resume, detector=detector)
        if install:
            _install([path])
        return path
    if name == "server":
        det = train_recipe_chain(SERVER_DETECTOR, data, out, epochs, resume)
        classifiers = _classifiers(SERVER_CLASSIFIERS, data, out, resume)
        return _assemble(
            out / "server" / "server.onnx", det, SERVER_DETECTOR, SERVER_SETTINGS, classifiers, data, install
        )
    raise MaskwatchError(
        f"unknown recipe {name!r}: use mobile, server, classifier, {', '.join(n for n in DETECTORS if n != 'mobile')} or {', '.join(CLASSIFIERS)}"
    )
