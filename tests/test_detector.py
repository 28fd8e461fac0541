"""The Python API contract, on real photos (skipped without them) and on pictures made here."""

import pickle
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import pytest

from conftest import kaggle_val
from maskwatch import LABELS, Detector, Face, ImageError, ModelError
from maskwatch.core.geometry import iou_matrix


def test_blank_picture_has_no_face(mobile, blank_jpeg):
    assert mobile.detect(blank_jpeg) == []


def test_any_size_and_channels_work(mobile):
    for shape in [(1, 1, 3), (7, 3000, 3), (50, 40), (64, 64, 4), (2000, 30, 1)]:
        img = np.full(shape, 128, np.uint8)
        faces = mobile.detect(img)
        assert isinstance(faces, list)


def test_unknown_model_and_bad_file(tmp_path):
    with pytest.raises(ModelError, match="not a model name"):
        Detector("tiny-yolo")
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"not onnx")
    with pytest.raises(ModelError, match="broken.onnx"):
        Detector(str(bad))


def test_bad_input_names_it(mobile, tmp_path):
    p = tmp_path / "fake.png"
    p.write_text("hello")
    with pytest.raises(ImageError, match="fake.png"):
        mobile.detect(str(p))


def test_faces_found_where_labels_say(data, mobile):
    """On Kaggle validation photos, most labelled faces of 16 px and up are found, with valid fields."""
    found = total = 0
    for s in kaggle_val(data, 25):
        faces = mobile.detect(str(s.image))
        for f in faces:
            assert isinstance(f, Face) and f.label in LABELS
            assert 0.0 <= f.confidence <= 1.0 and mobile.score_threshold <= f.score <= 1.0
            x1, y1, x2, y2 = f.box
            assert x2 > x1 and y2 > y1
            assert isinstance(x1, float)
        h = s.boxes[:, 3] - s.boxes[:, 1]
        gt = s.boxes[(h >= 16) & ~s.ignore]
        total += len(gt)
        if len(gt) and faces:
            iou = iou_matrix(gt, np.array([f.box for f in faces]))
            found += int((iou.max(1) >= 0.5).sum())
    assert total > 20
    assert found / total >= 0.6, f"found {found} of {total} labelled faces"


def test_path_bytes_and_array_agree(data, mobile):
    s = kaggle_val(data, 1)[0]
    a = mobile.detect(str(s.image))
    b = mobile.detect(s.image.read_bytes())
    c = mobile.detect(cv2.imread(str(s.image)))
    assert [f.box for f in a] == [f.box for f in b] == [f.box for f in c]
    assert a, "expected a face on the first validation picture"


def test_threshold_filters_by_face_score(data):
    s = kaggle_val(data, 3)
    low = Detector("mobile", score_threshold=0.2)
    high = Detector("mobile", score_threshold=0.8)
    for sample in s:
        lo, hi = low.detect(str(sample.image)), high.detect(str(sample.image))
        assert len(hi) <= len(lo)
        assert all(f.score >= 0.8 for f in hi)


def test_batch_keeps_order(data, mobile):
    paths = [str(s.image) for s in kaggle_val(data, 4)]
    batch = mobile.detect_batch(paths + [paths[0]])
    assert len(batch) == 5
    for p, faces in zip(paths, batch):
        assert [f.box for f in faces] == [f.box for f in mobile.detect(p)]
    assert [f.box for f in batch[4]] == [f.box for f in batch[0]]


def test_one_detector_many_threads(data, mobile):
    paths = [str(s.image) for s in kaggle_val(data, 6)] * 3
    expect = [[f.box for f in mobile.detect(p)] for p in paths]
    with ThreadPoolExecutor(6) as pool:
        got = list(pool.map(lambda p: [f.box for f in mobile.detect(p)], paths))
    assert got == expect


def test_reused_input_buffer_leaves_no_trace_between_pictures_or_threads():
    """The network input buffer is reused (per thread): what a picture gives must not depend on
    the pictures run before it, their sizes, or other threads."""
    rng = np.random.default_rng(0)
    pics = [
        cv2.GaussianBlur(rng.integers(0, 255, (h, w, 3), dtype=np.uint8), (0, 0), 3)
        for h, w in [(640, 480), (120, 900), (480, 640), (300, 200), (700, 700)]
    ]

    def raw(det, img):
        r = det.detections(img, 0.05)
        return r.boxes.tolist(), r.scores.tolist()

    fresh = [raw(Detector("mobile", flip=True), im) for im in pics]  # a new detector (and buffer) each
    assert any(len(b) for b, _ in fresh)  # low enough a threshold that there is something to compare
    shared = Detector("mobile", flip=True)
    assert [raw(shared, im) for im in pics] == fresh
    assert [raw(shared, im) for im in pics[::-1]] == fresh[::-1]
    with ThreadPoolExecutor(3) as pool:
        assert list(pool.map(lambda im: raw(shared, im), pics * 2)) == fresh * 2


def test_shrinking_by_a_whole_factor_first_gives_the_area_average():
    """``resize_to``: a picture shrunk to half or less is averaged by a whole factor first, then resized
    bilinearly by the rest; the result has the asked size and stays close to one-step area averaging,
    odd sizes included. From ``AREA_BELOW`` up it is bilinear, and the same size is the picture itself."""
    from maskwatch.core.detector import AREA_BELOW, resize_to

    rng = np.random.default_rng(3)
    smooth = cv2.GaussianBlur(rng.integers(0, 256, (483, 641, 3), dtype=np.uint8), (0, 0), 6)
    for nw, nh in [(224, 169), (320, 241), (160, 120), (100, 75), (300, 226)]:
        got = resize_to(smooth, nw, nh)
        assert got.shape == (nh, nw, 3) and got.dtype == np.uint8
        area = cv2.resize(smooth, (nw, nh), interpolation=cv2.INTER_AREA)
        assert np.abs(got.astype(np.float64) - area).mean() < 1.0, (nw, nh)
    nw = int(641 * AREA_BELOW) + 1
    assert np.array_equal(resize_to(smooth, nw, 380), cv2.resize(smooth, (nw, 380), interpolation=cv2.INTER_LINEAR))
    assert resize_to(smooth, 641, 483) is smooth


def test_server_model_loads_with_classifier(data):
    det, mobile = Detector("server"), Detector("mobile")
    assert det.flip and not mobile.flip  # the server runs each pass mirrored too
    assert det.input_size == mobile.input_size  # on mobile's network at its sizes
    assert len(det._classifiers) == 2 and det._verify_weight > 0  # two crop classifiers on every face, with a veto
    s = kaggle_val(data, 2)[1]
    faces = det.detect(str(s.image))
    assert faces and all(f.label in LABELS for f in faces)
    assert all(abs(sum(f.probs) - 1.0) < 1e-3 for f in faces)


def test_several_crop_classifiers_are_averaged(tmp_path, data):
    """A model may name a list of classifiers; their probabilities are averaged before blending."""
    import shutil

    pytest.importorskip("onnx", reason="writing model metadata needs onnx (the dev extra)")
    from maskwatch.core.registry import read_metadata
    from maskwatch.export import write_metadata
    from maskwatch.models import MODEL_DIR

    meta = read_metadata(MODEL_DIR / "server.onnx")
    names = [meta["classifier"]] if isinstance(meta["classifier"], str) else meta["classifier"]
    for n in names:
        shutil.copy2(MODEL_DIR / n, tmp_path / n)
    img = cv2.imread(str(kaggle_val(data, 2)[1].image))
    one = {}
    # no veto, so that every variant keeps the same faces (each classifier's P(face) would move the scores)
    meta = {**meta, "verify_weight": 0.0}
    for n in names:  # each classifier alone
        shutil.copy2(MODEL_DIR / "server.onnx", tmp_path / f"only_{n}.onnx")
        write_metadata(tmp_path / f"only_{n}.onnx", {**meta, "classifier": n, "classifier_weight": 1.0})
        one[n] = Detector(tmp_path / f"only_{n}.onnx").detections(img, 0.3).probs
    shutil.copy2(MODEL_DIR / "server.onnx", tmp_path / "all.onnx")
    write_metadata(tmp_path / "all.onnx", {**meta, "classifier": names + names[:1], "classifier_weight": 1.0})
    both = Detector(tmp_path / "all.onnx").detections(img, 0.3).probs
    expect = (sum(one.values()) + one[names[0]]) / (len(names) + 1)
    assert len(both) and np.allclose(both, expect, atol=1e-5)
    write_metadata(tmp_path / "all.onnx", {**meta, "classifier": names + ["missing.onnx"]})
    with pytest.raises(ModelError, match="missing.onnx"):
        Detector(tmp_path / "all.onnx")


def test_tiles_find_small_faces_in_a_large_picture(data):
    """A crowd photo pasted small into a 4000 px canvas: tiling finds faces a plain pass at a fixed
    size cannot, and the model's input rule tiles such a picture by itself."""
    s = kaggle_val(data, 10)
    sample = max(s, key=lambda x: len(x.boxes))
    img = cv2.imread(str(sample.image))
    canvas = np.full((3000, 4000, 3), 90, np.uint8)
    canvas[1000 : 1000 + img.shape[0], 1500 : 1500 + img.shape[1]] = img
    plain = Detector("mobile", input_size=800).detect(canvas)  # the fixed rule: the whole picture at 800 px
    tiled = Detector("mobile", input_size=800, tile=True).detect(canvas)
    sized = Detector("mobile").detect(canvas)  # the model's own rule: a picture this large also gets tiles
    gt = sample.boxes + np.array([1500, 1000, 1500, 1000], np.float32)

    def hits(faces):
        if not faces:
            return 0
        return int((iou_matrix(gt, np.array([f.box for f in faces])).max(1) >= 0.4).sum())

    assert hits(tiled) > hits(plain)
    assert hits(tiled) >= len(gt) // 2
    assert hits(sized) > hits(plain) and hits(sized) >= len(gt) // 2


def _toy_classifier(path, labels: list[str], probs: list[float]) -> None:
    """A crop classifier ONNX file made with onnx (no torch). With a background class last, it answers
    P(background) = mean crop brightness / 255 and shares the rest as ``probs``; without, ``probs``."""
    from onnx import TensorProto, helper

    from maskwatch.export import write_metadata

    k = len(probs)
    nodes = [
        helper.make_node("ReduceMean", ["crops"], ["m"], axes=[1, 2, 3], keepdims=0),
        helper.make_node("Unsqueeze", ["m", "ax"], ["m2"]),
        helper.make_node("Mul", ["m2", "inv255"], ["bg"]),  # (n, 1) in [0, 1]
        helper.make_node("Sub", ["one", "bg"], ["face"]),
        helper.make_node("Mul", ["face", "const"], ["cls"]),
    ]  # (n, k)
    if "background" in labels:
        nodes.append(helper.make_node("Concat", ["cls", "bg"], ["probs"], axis=1))
        n_out = k + 1
    else:
        nodes += [helper.make_node("Mul", ["m2", "zero"], ["z"]), helper.make_node("Add", ["z", "const"], ["probs"])]
        n_out = k
    inits = [
        helper.make_tensor("ax", TensorProto.INT64, [1], [1]),
        helper.make_tensor("inv255", TensorProto.FLOAT, [1, 1], [1 / 255]),
        helper.make_tensor("one", TensorProto.FLOAT, [1, 1], [1.0]),
        helper.make_tensor("zero", TensorProto.FLOAT, [1, 1], [0.0]),
        helper.make_tensor("const", TensorProto.FLOAT, [1, k], probs),
    ]
    graph = helper.make_graph(
        nodes,
        "toy",
        [helper.make_tensor_value_info("crops", TensorProto.FLOAT, ["n", 3, 32, 32])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["n", n_out])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    path.write_bytes(model.SerializeToString())
    write_metadata(path, {"kind": "classifier", "labels": labels, "input_size": 32, "crop_expand": 1.3})


def _without_classifier(meta: dict) -> dict:
    """A model file's settings without its second stage (the detector's network alone)."""
    from maskwatch.core.registry import SECOND_STAGE

    return {k: v for k, v in meta.items() if k not in SECOND_STAGE}


def test_classifier_below_asks_the_crop_classifier_only_where_the_detector_is_unsure(tmp_path, data):
    """``classifier_below``: a cascade. Faces whose own top class probability reaches it keep the
    detector's labels; the rest get the classifier's blend (and its veto, re-sorted)."""
    import shutil

    pytest.importorskip("onnx", reason="writing model files needs onnx (the dev extra)")
    from maskwatch.core.registry import read_metadata
    from maskwatch.export import write_metadata
    from maskwatch.models import MODEL_DIR

    _toy_classifier(tmp_path / "plain.onnx", list(LABELS), [0.1, 0.1, 0.8])
    meta = _without_classifier(read_metadata(MODEL_DIR / "mobile.onnx"))
    for name in ("bare.onnx", "cascade.onnx", "all.onnx"):
        shutil.copy2(MODEL_DIR / "mobile.onnx", tmp_path / name)
    write_metadata(tmp_path / "bare.onnx", meta)
    second = {"classifier": "plain.onnx", "classifier_weight": 1.0}
    write_metadata(tmp_path / "cascade.onnx", {**meta, **second, "classifier_below": 0.9})
    write_metadata(tmp_path / "all.onnx", {**meta, **second})
    assert Detector(tmp_path / "all.onnx").spec.classifier_below > 1  # the default: every face
    img = cv2.imread(str(kaggle_val(data, 1)[0].image))
    bare = Detector(tmp_path / "bare.onnx").detections(img, 0.02)
    cascade = Detector(tmp_path / "cascade.onnx").detections(img, 0.02)
    every = Detector(tmp_path / "all.onnx").detections(img, 0.02)
    sure = bare.probs.max(axis=1) >= 0.9
    assert sure.any() and (~sure).any()  # both kinds on this picture, so both rules are checked
    assert np.array_equal(cascade.boxes, bare.boxes) and np.array_equal(cascade.scores, bare.scores)
    assert np.allclose(cascade.probs[sure], bare.probs[sure])
    assert np.allclose(cascade.probs[~sure], [0.1, 0.1, 0.8], atol=1e-6)
    assert np.allclose(every.probs, [0.1, 0.1, 0.8], atol=1e-6)
    # a per-detector setting overrides the file's: 0 never asks, above 1 asks about every face
    assert np.allclose(Detector(tmp_path / "cascade.onnx", classifier_below=0).detections(img, 0.02).probs, bare.probs)
    assert np.allclose(Detector(tmp_path / "cascade.onnx", classifier_below=2).detections(img, 0.02).probs, every.probs)


def test_faces_voted_no_mask_are_asked_from_their_own_line(tmp_path, data):
    """``classifier_below_bare``: the faces voted ``no_mask`` are asked about only under this line, the
    others under ``classifier_below`` (a hand over a bare mouth is voted mask); a call's
    ``classifier_below`` sets both."""
    import shutil

    pytest.importorskip("onnx", reason="writing model files needs onnx (the dev extra)")
    from maskwatch.core.registry import read_metadata
    from maskwatch.export import write_metadata
    from maskwatch.models import MODEL_DIR

    _toy_classifier(tmp_path / "plain.onnx", list(LABELS), [0.1, 0.1, 0.8])
    meta = _without_classifier(read_metadata(MODEL_DIR / "mobile.onnx"))
    for name in ("bare.onnx", "two.onnx"):
        shutil.copy2(MODEL_DIR / "mobile.onnx", tmp_path / name)
    write_metadata(tmp_path / "bare.onnx", meta)
    second = {"classifier": "plain.onnx", "classifier_weight": 1.0, "classifier_below": 0.999}
    write_metadata(tmp_path / "two.onnx", {**meta, **second, "classifier_below_bare": 0.8})
    imgs = [cv2.imread(str(s.image)) for s in kaggle_val(data, 6)]
    bare = [Detector(tmp_path / "bare.onnx").detections(img, 0.02) for img in imgs]
    two = [Detector(tmp_path / "two.onnx").detections(img, 0.02) for img in imgs]
    top = np.concatenate([b.probs.max(axis=1) for b in bare])
    bare_voted = np.concatenate([b.probs.argmax(axis=1) == LABELS.index("no_mask") for b in bare])
    asked = np.where(bare_voted, top < 0.8, top < 0.999)
    # all three kinds on these pictures: voted other than no_mask and asked, voted no_mask over the
    # lower line (not asked) and under it (asked)
    assert (~bare_voted & (top >= 0.8) & asked).any()
    assert (bare_voted & (top >= 0.8) & (top < 0.999)).any() and (bare_voted & (top < 0.8)).any()
    got = np.concatenate([t.probs for t in two])
    assert all(np.array_equal(t.boxes, b.boxes) for t, b in zip(two, bare))
    assert np.allclose(got[asked], [0.1, 0.1, 0.8], atol=1e-6)
    assert np.allclose(got[~asked], np.concatenate([b.probs for b in bare])[~asked])
    # a call's own classifier_below is both lines
    det = Detector(tmp_path / "two.onnx", classifier_below=0.999)
    assert det._cls_below_bare == det._cls_below == 0.999
    assert Detector(tmp_path / "two.onnx").settings.classifier_below_bare == 0.8


def test_one_pass_labels_are_the_vote_of_each_faces_candidates(data):
    """With one pass, a face's label probabilities are class_vote over the candidates around it,
    not the top candidate's alone (boxes and scores stay the top candidate's)."""
    from maskwatch.core.detector import VOTE_IOU, VOTE_SCORE
    from maskwatch.core.geometry import class_vote, clip_boxes, nms

    det = Detector("mobile", zoom=0, classifier_below=0)  # the network's own labels
    img = cv2.imread(str(kaggle_val(data, 3)[2].image))
    h, w = img.shape[:2]
    (size,), regions = det.passes(w, h)
    assert not regions
    pool = det._run_view(img, (0, 0, w, h), size, VOTE_SCORE)  # candidates below the threshold vote too
    boxes = clip_boxes(pool.boxes, w, h)
    above = np.flatnonzero(pool.scores >= 0.4)
    keep = above[nms(boxes[above], pool.scores[above], det.nms_threshold)]
    got = det._postprocess(img, [pool], 0.4)
    assert len(got) == len(keep) > 0
    assert np.allclose(got.boxes, boxes[keep]) and np.allclose(got.scores, pool.scores[keep])
    want = class_vote(boxes, pool.scores, pool.probs, keep, VOTE_IOU, VOTE_SCORE)
    assert np.allclose(got.probs, want, atol=1e-6)
    assert not np.allclose(got.probs, pool.probs[keep], atol=1e-3)  # the vote changed something
    # the pool is fixed: a face's label is the same whatever threshold the call asks for
    low, high = det.detections(img, 0.05), det.detections(img, 0.7)
    assert len(high) and np.allclose(low[low.scores >= 0.7].probs, high.probs, atol=1e-6)


def test_background_class_vetoes_faces(tmp_path, data):
    """A classifier with a background class multiplies each face score by P(face) ** verify_weight,
    keeps boxes, scores and classes together, re-sorts, and labels from the mask classes only; a
    classifier without one is averaged into the classes but has no say in the veto."""
    import shutil

    pytest.importorskip("onnx", reason="writing model files needs onnx (the dev extra)")
    from maskwatch.core.calibration import calibrate
    from maskwatch.core.detector import face_crops
    from maskwatch.core.registry import read_metadata
    from maskwatch.export import write_metadata
    from maskwatch.models import MODEL_DIR

    _toy_classifier(tmp_path / "veto.onnx", list(LABELS) + ["background"], [0.2, 0.6, 0.2])
    _toy_classifier(tmp_path / "plain.onnx", list(LABELS), [0.1, 0.1, 0.8])
    meta = _without_classifier(read_metadata(MODEL_DIR / "mobile.onnx"))
    for name in ("m.onnx", "bare.onnx"):
        shutil.copy2(MODEL_DIR / "mobile.onnx", tmp_path / name)
    write_metadata(tmp_path / "bare.onnx", meta)
    write_metadata(
        tmp_path / "m.onnx",
        {**meta, "classifier": ["veto.onnx", "plain.onnx"], "classifier_weight": 0.5, "verify_weight": 2.0},
    )
    img = cv2.imread(str(kaggle_val(data, 1)[0].image))
    plain = Detector(tmp_path / "bare.onnx").detections(img, 0.02)
    vetoed = Detector(tmp_path / "m.onnx").detections(img, 0.02)
    assert len(plain) > 3 and len(vetoed) > 3
    face = 1 - face_crops(img, plain.boxes, 32, 1.3).astype(np.float64).mean(axis=(1, 2, 3)) / 255
    assert face.std() > 0.02  # the pictures differ, so the veto reorders
    knots = Detector("mobile").spec.score_calibration  # face scores are calibrated: the veto applies before
    raw = np.interp(plain.scores, knots[1], knots[0]) if knots else plain.scores
    expect = calibrate(raw * face**2.0, knots) if knots else raw * face**2.0
    cls = (np.array([0.2, 0.6, 0.2]) + np.array([0.1, 0.1, 0.8])) / 2
    for b, s, p in zip(vetoed.boxes, vetoed.scores, vetoed.probs):
        i = int(np.argmin(np.abs(plain.boxes - b).sum(1)))
        assert np.allclose(plain.boxes[i], b) and abs(s - expect[i]) < 1e-4
        assert np.allclose(p, 0.5 * cls + 0.5 * plain.probs[i], atol=1e-5)
    assert (np.diff(vetoed.scores) <= 0).all()
    assert len(vetoed) == int((expect >= 0.02).sum())
    faces = Detector(tmp_path / "m.onnx", score_threshold=0.0).detect(img)
    assert faces and all(f.label in LABELS and 0.0 <= f.score <= 1.0 for f in faces)
    write_metadata(
        tmp_path / "veto.onnx", {"kind": "classifier", "labels": ["a", "b", "c", "background"], "input_size": 32}
    )
    with pytest.raises(ModelError, match="labels"):
        Detector(tmp_path / "m.onnx")


def test_rescued_lifts_faces_just_under_the_models_threshold(tmp_path, data):
    """``rescue``: the faces scored in [t^(1/(1-w)), t) (t the file's own threshold), voted mask or
    incorrect, with a short side of ``rescue_min_side`` px or more and not inside a face over t get
    max(s, s^(1-w) x P(face)^w) from the rescue classifier, never less; every other face keeps its
    score; the band is the file's, whatever a call asks for."""
    import shutil

    pytest.importorskip("onnx", reason="writing model files needs onnx (the dev extra)")
    from maskwatch.core.detector import face_crops
    from maskwatch.core.geometry import containment_matrix
    from maskwatch.core.registry import read_metadata
    from maskwatch.export import write_metadata
    from maskwatch.models import MODEL_DIR

    _toy_classifier(tmp_path / "veto.onnx", list(LABELS) + ["background"], [0.2, 0.6, 0.2])
    _toy_classifier(tmp_path / "plain.onnx", list(LABELS), [0.1, 0.1, 0.8])
    meta = {**_without_classifier(read_metadata(MODEL_DIR / "mobile.onnx")), "score_threshold": 0.6}
    for name in ("bare.onnx", "m.onnx", "big.onnx", "bad.onnx"):
        shutil.copy2(MODEL_DIR / "mobile.onnx", tmp_path / name)
    write_metadata(tmp_path / "bare.onnx", meta)
    second = {"rescue": 0.9, "rescue_classifier": "veto.onnx", "rescue_min_side": 20.0}
    write_metadata(tmp_path / "m.onnx", {**meta, **second})
    img = cv2.imread(str(kaggle_val(data, 1)[0].image))
    det = Detector(tmp_path / "m.onnx")
    low, high = det._rescue_band
    assert high == 0.6 and abs(low - 0.6**10) < 1e-9
    plain = Detector(tmp_path / "bare.onnx").detections(img, low)  # a call keeps candidates down to the band
    looked = det.detections(img, 0.02)
    assert len(plain) > 3 and (np.diff(looked.scores) <= 0).all()
    face = 1 - face_crops(img, plain.boxes, 32, 1.3).astype(np.float64).mean(axis=(1, 2, 3)) / 255
    side = np.minimum(plain.boxes[:, 2] - plain.boxes[:, 0], plain.boxes[:, 3] - plain.boxes[:, 1])
    inside = containment_matrix(plain.boxes, plain.boxes[plain.scores >= high]).max(axis=1, initial=0.0)
    voted_bare = plain.probs.argmax(axis=1) == LABELS.index("no_mask")  # not what the rescue is for
    ask = (plain.scores >= low) & (plain.scores < high) & (side >= 20) & (inside < 0.7) & ~voted_bare
    assert ask.any() and (ask != ((plain.scores >= low) & (plain.scores < high))).any()  # both rules at work
    want = np.where(ask, np.maximum(plain.scores, plain.scores**0.1 * face**0.9), plain.scores)
    # the looked-at faces take the classifier's classes (blended 0.7, the default), as the cascade's
    want_probs = np.where(ask[:, None], 0.7 * np.array([0.2, 0.6, 0.2]) + 0.3 * plain.probs, plain.probs)
    assert len(looked) == int((want >= 0.02).sum())
    lifted = 0
    for b, s, p in zip(looked.boxes, looked.scores, looked.probs):
        i = int(np.argmin(np.abs(plain.boxes - b).sum(1)))
        assert np.allclose(plain.boxes[i], b) and abs(s - want[i]) < 1e-4 and np.allclose(p, want_probs[i], atol=1e-5)
        lifted += s > plain.scores[i] + 1e-6
    assert lifted > 0 and ask.sum() > lifted - 1  # some faces of the band were lifted, none outside it
    # rescue_min_face: only where the classifier is that sure of a face
    lifts = np.sort(face[ask & (face > plain.scores)])
    assert len(lifts) >= 2
    sure = float(lifts[len(lifts) // 2 - 1] + lifts[len(lifts) // 2]) / 2  # between two faces, not on one
    write_metadata(tmp_path / "big.onnx", {**meta, **second, "rescue_min_face": sure})
    picky = Detector(tmp_path / "big.onnx").detections(img, 0.02)
    want_picky = np.where(ask & (face >= sure), want, plain.scores)
    assert np.allclose(np.sort(picky.scores), np.sort(want_picky[want_picky >= 0.02]), atol=1e-4)
    assert (want_picky != want).any() and (want_picky != plain.scores).any()
    # a face's score does not depend on the call's threshold: the band is the file's
    at = det.detections(img, 0.3)
    assert np.allclose(at.scores, looked.scores[looked.scores >= 0.3], atol=1e-6)
    # no face big enough, or no second stage asked for: the network's scores
    write_metadata(tmp_path / "big.onnx", {**meta, **second, "rescue_min_side": 1e6})
    assert np.allclose(Detector(tmp_path / "big.onnx").detections(img, low).scores, plain.scores)
    assert np.allclose(Detector(tmp_path / "m.onnx", classifier_below=0).detections(img, low).scores, plain.scores)
    for bad, match in (({"rescue": 1.0}, "between 0 and 1"), ({"rescue_classifier": "plain.onnx"}, "background")):
        write_metadata(tmp_path / "bad.onnx", {**meta, **second, **bad})
        with pytest.raises(ModelError, match=match):
            Detector(tmp_path / "bad.onnx")
    write_metadata(tmp_path / "bad.onnx", {**meta, **second, "rescue_classifier": "gone.onnx"})
    with pytest.raises(ModelError, match="gone.onnx"):
        Detector(tmp_path / "bad.onnx")
    write_metadata(tmp_path / "bad.onnx", {**meta, **second, "rescue_input": 16})  # the toy takes 32 px only
    with pytest.raises(ModelError, match="32 px crops only"):
        Detector(tmp_path / "bad.onnx")


def test_rescue_after_the_veto_lifts_with_the_classifiers_own_face_probability(tmp_path, data):
    """A model whose classifiers label and veto every face and that names no ``rescue_classifier``
    rescues after the veto: a face whose vetoed score falls in the band (voted mask or incorrect before
    the second stage, big enough, not inside a face over the threshold) is lifted with the P(face) its
    classifiers gave, no crop more; the others keep their vetoed scores."""
    import shutil

    pytest.importorskip("onnx", reason="writing model files needs onnx (the dev extra)")
    from maskwatch.core.calibration import calibrate
    from maskwatch.core.detector import face_crops
    from maskwatch.core.geometry import containment_matrix
    from maskwatch.core.registry import read_metadata
    from maskwatch.export import write_metadata
    from maskwatch.models import MODEL_DIR

    _toy_classifier(tmp_path / "veto.onnx", list(LABELS) + ["background"], [0.2, 0.6, 0.2])
    meta = {**_without_classifier(read_metadata(MODEL_DIR / "mobile.onnx")), "score_threshold": 0.6}
    for name in ("bare.onnx", "v.onnx", "r.onnx", "bad.onnx"):
        shutil.copy2(MODEL_DIR / "mobile.onnx", tmp_path / name)
    write_metadata(tmp_path / "bare.onnx", meta)
    veto = {**meta, "classifier": ["veto.onnx"], "classifier_weight": 0.5, "verify_weight": 0.5}
    write_metadata(tmp_path / "v.onnx", veto)
    write_metadata(tmp_path / "r.onnx", {**veto, "rescue": 0.9, "rescue_min_side": 20.0})
    det = Detector(tmp_path / "r.onnx")
    assert det._rescue is None and det._rescue_after and np.allclose(det._rescue_band, (0.6**10, 0.6))
    img = cv2.imread(str(kaggle_val(data, 1)[0].image))
    low, high = det._rescue_band
    plain = Detector(tmp_path / "bare.onnx").detections(img, low)  # the candidates, before the veto
    knots = det.spec.score_calibration
    face = 1 - face_crops(img, plain.boxes, 32, 1.3).astype(np.float64).mean(axis=(1, 2, 3)) / 255
    raw = np.interp(plain.scores, knots[1], knots[0]) if knots else plain.scores
    vetoed = calibrate(raw * face**0.5, knots) if knots else raw * face**0.5
    side = np.minimum(plain.boxes[:, 2] - plain.boxes[:, 0], plain.boxes[:, 3] - plain.boxes[:, 1])
    inside = containment_matrix(plain.boxes, plain.boxes[vetoed >= high]).max(axis=1, initial=0.0)
    masked = plain.probs.argmax(axis=1) != LABELS.index("no_mask")
    ask = (vetoed >= low) & (vetoed < high) & (side >= 20) & (inside < 0.7) & masked
    want = np.where(ask, np.maximum(vetoed, vetoed**0.1 * face**0.9), vetoed)
    in_band = (vetoed >= low) & (vetoed < high)
    assert ask.any() and (want > vetoed + 1e-6).any() and (ask != in_band).any()  # lifts, and rules that exclude
    got = det.detections(img, 0.1)
    assert (np.diff(got.scores) <= 0).all() and len(got) == int((want >= 0.1).sum())
    for b, sc in zip(got.boxes, got.scores):
        i = int(np.argmin(np.abs(plain.boxes - b).sum(1)))
        assert np.allclose(plain.boxes[i], b) and abs(sc - want[i]) < 1e-4
    # without the rescue: the vetoed scores; with one but no veto on every face: refused
    kept = Detector(tmp_path / "v.onnx").detections(img, 0.1)
    assert np.allclose(np.sort(kept.scores), np.sort(vetoed[vetoed >= 0.1]), atol=1e-4)
    write_metadata(tmp_path / "bad.onnx", {**veto, "rescue": 0.9, "classifier_below": 0.9})
    with pytest.raises(ModelError, match="veto every face"):
        Detector(tmp_path / "bad.onnx")


def test_rescued_runs_smaller_crops_where_the_classifier_takes_any_size():
    """``rescue_input``: the shipped classifiers pool over the whole crop, so mobile's rescue runs
    its crops at the size its file asks for (96 px), and they still tell a face from a wall."""
    det = Detector("mobile")
    assert det._rescue is not None and det._rescue.size == det.settings.rescue_input == 96
    # what the browser page reads to run the same rescue (GET /v1/models)
    page = det.spec.summary()["rescue_settings"]
    assert page["file"] == det.settings.rescue_classifier and "background" in page["labels"]
    assert Detector("server").spec.summary()["rescue_settings"] is None
    rng = np.random.default_rng(0)
    wall = rng.integers(100, 140, (200, 200, 3), dtype=np.uint8)
    probs, face = det._rescue(wall, np.array([[50, 50, 150, 150]], np.float32))
    assert probs.shape == (1, len(LABELS)) and np.allclose(probs.sum(1), 1) and face is not None and face[0] < 0.5


def test_crop_classifier_flip_averages_mirrored_crops():
    """``classifier_flip``: each crop is also classified mirrored, and the two answers are averaged
    (with ``classifier_flip_below``, only the crops the classifier is unsure of)."""
    from maskwatch.core.detector import CropModel, face_crops
    from maskwatch.core.registry import classifier_files, read_metadata
    from maskwatch.models import MODEL_DIR

    path = MODEL_DIR / classifier_files(read_metadata(MODEL_DIR / "server.onnx"))[0]
    rng = np.random.default_rng(0)
    img = cv2.GaussianBlur(rng.integers(0, 255, (240, 320, 3), dtype=np.uint8), (0, 0), 3)
    img[60:180, 40:120] = np.linspace(0, 255, 80, dtype=np.uint8)[None, :, None]  # left-right asymmetric
    boxes = np.array([[40, 60, 120, 180], [150, 20, 230, 120], [10, 10, 40, 50]], np.float32)
    plain, flipped = CropModel.load(path), CropModel.load(path, flip=True)
    crops = face_crops(img, boxes, plain.size, plain.expand)

    def run(c):
        return plain.session.run(None, {plain.input: np.ascontiguousarray(c.transpose(0, 3, 1, 2)).astype(np.float32)})[
            0
        ]

    expect = (run(crops) + run(crops[:, :, ::-1])) / 2
    bg = plain.background
    p, face = flipped(img, boxes)
    assert np.allclose(face, 1 - expect[:, bg], atol=1e-5)
    mask_classes = np.delete(expect, bg, axis=1)
    assert np.allclose(p, mask_classes / mask_classes.sum(1, keepdims=True), atol=1e-5)
    assert not np.allclose(p, plain(img, boxes)[0], atol=1e-4)  # the mirrored crops do change the answer
    assert flipped(img, boxes[:0])[0].shape == (0, len(LABELS))
    # classifier_flip_below: only the crops whose top class is under it are seen mirrored
    once = run(crops)
    top = np.sort(once.max(axis=1))
    below = float(top[0] + top[1]) / 2  # between the two least sure crops: one mirrored, the others not
    picky = CropModel.load(path, flip=True, flip_below=below)
    want = np.where((once.max(axis=1) < below)[:, None], expect, once)
    p, face = picky(img, boxes)
    assert np.allclose(face, 1 - want[:, bg], atol=1e-5)
    mask_classes = np.delete(want, bg, axis=1)
    assert np.allclose(p, mask_classes / mask_classes.sum(1, keepdims=True), atol=1e-5)
    assert (once.max(axis=1) < below).sum() == 1


def test_no_face_of_zero_area_when_passes_are_merged():
    """A candidate lying wholly in a pass's padding clips to nothing; it must not come out as a face."""
    det = Detector("mobile", score_threshold=0.02, flip=True)
    narrow = np.random.default_rng(0).integers(0, 255, (800, 10, 3), dtype=np.uint8)
    faces = det.detect(narrow)
    assert all(f.box[2] - f.box[0] >= 1 and f.box[3] - f.box[1] >= 1 for f in faces)
    assert all(0 <= f.box[0] and f.box[2] <= 10 for f in faces)


@pytest.mark.parametrize("scales", [(0.0,), (-1.0,), (0.001,), (1.0, float("nan"))])
def test_scales_that_give_no_usable_input_are_refused(scales):
    with pytest.raises(ValueError, match="scales"):
        Detector("mobile", scales=scales)


def test_threshold_zero_is_capped_before_nms(monkeypatch):
    """score_threshold=0 keeps every anchor: a busy picture once sent thousands of boxes to NMS and
    to the second stage (20 s over HTTP); now each pass sends 4 x max_faces at most, and a picture
    gives max_faces at most, the highest scored."""
    import pickle

    import maskwatch.core.detector as detector_mod

    busy = np.random.default_rng(0).integers(0, 255, (720, 1280, 3), dtype=np.uint8)
    sizes = []
    real_nms = detector_mod.nms
    monkeypatch.setattr(detector_mod, "nms", lambda b, s, t, **k: sizes.append(len(b)) or real_nms(b, s, t, **k))
    det = Detector("mobile", input_size=800, shrink_input=0)  # one fixed pass, whatever the picture's size
    faces = det.detections(busy, score_threshold=0.0)
    assert len(faces) == detector_mod.MAX_FACES == 1000 and len(sizes) == 1 and 3900 < sizes[0] <= 4000
    small = Detector("mobile", max_faces=50, input_size=800, shrink_input=0)
    sizes.clear()
    few = small.detections(busy, score_threshold=0.0)
    assert len(few) == 50 and len(sizes) == 1 and 190 < sizes[0] <= 200
    assert np.all(np.diff(few.scores) <= 0) and few.scores[-1] >= np.sort(faces.scores)[-50]  # the best ones
    assert pickle.loads(pickle.dumps(small)).max_faces == 50
    sizes.clear()
    server = Detector("server", max_faces=20, shrink_input=0)  # two passes (flip) voting, then the crop classifier
    assert len(server.detections(busy, score_threshold=0.0)) <= 20 and len(sizes) == 1 and 150 < sizes[0] <= 2 * 80
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="max_faces"):
            Detector("mobile", max_faces=bad)


def test_sessions_taking_turns_do_not_spin():
    """A detector with crop classifiers runs two sessions in turn: neither may keep its threads
    spinning after its run (the server model took twice as long); a lone network keeps the default."""
    key = "session.intra_op.allow_spinning"
    server = Detector("server")
    assert server.session.get_session_options().get_session_config_entry(key) == "0"
    assert all(c.session.get_session_options().get_session_config_entry(key) == "0" for c in server._classifiers)
    lone = Detector("mobile").session.get_session_options()
    with pytest.raises(RuntimeError, match="allow_spinning"):  # not set: onnxruntime's default (spinning)
        lone.get_session_config_entry(key)


def test_classifier_below_is_checked_and_overrides_the_models():
    det = Detector("mobile", classifier_below=0)
    assert det._cls_below == 0.0 and pickle.loads(pickle.dumps(det))._cls_below == 0.0
    for bad in (-0.1, float("nan"), float("inf"), "0.9", True):
        with pytest.raises(ValueError, match="classifier_below"):
            Detector("mobile", classifier_below=bad)


def test_the_cascade_runs_its_classifiers_on_the_crop_size_its_file_asks_for(tmp_path, data):
    """``classifier_input``: the cascade's crop classifiers see crops of that side (the shipped ones
    pool over the whole crop, so any size runs); the labels it blends in are those of crops that size;
    a classifier with a fixed input refuses, naming its file and the setting."""
    import shutil

    pytest.importorskip("onnx", reason="writing model files needs onnx (the dev extra)")
    from maskwatch.core.detector import CropModel
    from maskwatch.core.registry import read_metadata
    from maskwatch.export import write_metadata
    from maskwatch.models import MODEL_DIR

    meta = read_metadata(MODEL_DIR / "mobile.onnx")
    cls_file = meta["classifier"][0]
    for name in ("mobile.onnx", cls_file, meta["rescue_classifier"]):
        shutil.copy2(MODEL_DIR / name, tmp_path / name)
    write_metadata(tmp_path / "mobile.onnx", {**meta, "classifier_input": 80, "classifier_below": 1.01, "rescue": 0.0})
    det = Detector(tmp_path / "mobile.onnx")
    own = CropModel.load(MODEL_DIR / cls_file)
    assert det._classifiers[0].size == 80 and own.size not in (0, 80)
    img = cv2.imread(str(kaggle_val(data, 1)[0].image))
    plain = Detector(tmp_path / "mobile.onnx", classifier_below=0).detections(img)
    asked = det.detections(img)
    assert len(plain) and np.allclose(np.sort(asked.boxes, axis=0), np.sort(plain.boxes, axis=0))
    small = own.resized(80, MODEL_DIR / cls_file, "classifier_input")(img, plain.boxes)[0]
    big = CropModel.load(MODEL_DIR / cls_file)(img, plain.boxes)[0]
    w = det.settings.classifier_weight
    for b, p in zip(asked.boxes, asked.probs):
        i = int(np.argmin(np.abs(plain.boxes - b).sum(1)))
        assert np.allclose(p, w * small[i] + (1 - w) * plain.probs[i], atol=1e-5)
    assert not np.allclose(small, big, atol=1e-3)  # the size is what changed them
    _toy_classifier(tmp_path / "fixed.onnx", list(LABELS), [0.1, 0.1, 0.8])  # takes 32 px only
    write_metadata(tmp_path / "mobile.onnx", {**meta, "classifier": ["fixed.onnx"], "classifier_input": 48})
    with pytest.raises(ModelError, match="fixed.onnx.*classifier_input 48"):
        Detector(tmp_path / "mobile.onnx")
