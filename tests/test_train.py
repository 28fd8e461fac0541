"""Training code: a few seconds on pictures made here; the loss falls and the export loads."""

import json

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="training needs the [train] extra (PyTorch)")

from maskwatch import Detector  # noqa: E402
from maskwatch.train.data import DetectionDataset, Source  # noqa: E402
from maskwatch.train.loop import DetectorRecipe, train_detector  # noqa: E402
from maskwatch.train.loss import anchor_points, assign  # noqa: E402


def make_voc(root, n=8, seed=0):
    """Pictures with bright 'faces' (filled ellipses) labelled mask / no_mask by colour."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True)
    (root / "annotations").mkdir()
    for i in range(n):
        img = np.full((160, 200, 3), 40, np.uint8)
        objs = []
        for _ in range(2):
            w = int(rng.integers(24, 60))
            x, y = int(rng.integers(0, 200 - w)), int(rng.integers(0, 160 - w))
            lab = int(rng.integers(0, 2))
            color = (60, 200, 60) if lab == 0 else (60, 60, 230)
            cv2.ellipse(img, (x + w // 2, y + w // 2), (w // 2, w // 2), 0, 0, 360, color, -1)
            objs.append((x, y, x + w, y + w, "with_mask" if lab == 0 else "without_mask"))
        cv2.imwrite(str(root / "images" / f"{i}.jpg"), img)
        body = "".join(
            f"<object><name>{n_}</name><bndbox><xmin>{a}</xmin><ymin>{b}</ymin><xmax>{c}</xmax><ymax>{d}</ymax></bndbox></object>"
            for a, b, c, d, n_ in objs
        )
        (root / "annotations" / f"{i}.xml").write_text(f"<annotation><filename>{i}.jpg</filename>{body}</annotation>")
    return root


def test_assign_gives_every_face_a_cell_and_respects_ignore():
    pts = anchor_points(128, 128)
    boxes = torch.tensor([[10.0, 10.0, 18.0, 18.0], [40.0, 40.0, 120.0, 120.0], [0.0, 100.0, 5.0, 105.0]])
    ignore = torch.tensor([False, False, True])
    idx, ign = assign(pts, boxes, ignore)
    assert (idx == 0).sum() >= 1  # a tiny 8 px face still gets its nearest cell
    assert (idx == 1).sum() >= 3
    assert (idx == 2).sum() == 0 and ign.any()


def test_paste_occluders_relabels_bare_and_unlabelled_faces_only():
    import random

    from maskwatch.train.data import paste_occluders

    img = np.full((200, 300, 3), 128, np.uint8)
    boxes = np.array([[20, 20, 100, 120], [150, 30, 230, 130], [250, 10, 260, 22], [160, 140, 200, 190]], np.float32)
    labels = np.array([-1, 1, -1, 0])  # unknown, no_mask, a tiny unknown face, a masked face
    ignore = np.array([False, False, False, False])
    before = img.copy()
    new = paste_occluders(img, boxes, labels, ignore, 1.0, random.Random(3))
    assert labels.tolist() == [-1, 1, -1, 0]  # the caller's labels are not changed in place
    assert new[2] == -1 and new[3] == 0  # too small to draw on; already masked
    for i in (0, 1):  # a mask (right or worn wrong) or an occluder was drawn on the lower face
        x1, y1, x2, y2 = boxes[i].astype(int)
        assert (img[y1:y2, x1:x2] != before[y1:y2, x1:x2]).any()
        assert new[i] in ((0, 2, -1) if labels[i] == -1 else (0, 2, 1))
    assert (img[140:190, 160:200] == before[140:190, 160:200]).all()  # the masked face is untouched
    # over many draws, every outcome appears
    seen = set()
    for seed in range(40):
        seen.add(
            int(
                paste_occluders(before.copy(), boxes[:1], np.array([1]), np.array([False]), 1.0, random.Random(seed))[0]
            )
        )
    assert seen == {0, 1, 2}


def test_paste_on_face_redraws_the_square_around_a_face_and_skips_faces_mostly_outside():
    from maskwatch.train.data import PASTE_EXPAND, paste_on_face

    img = np.full((200, 300, 3), 128, np.uint8)
    seen = []

    def paint(square, expand):
        seen.append((square.shape, expand))
        return np.zeros_like(square)

    assert paste_on_face(img, np.array([100, 50, 140, 100], np.float32), paint)
    side = round(50 * PASTE_EXPAND)  # the square's side: the face height x PASTE_EXPAND, centred on the face
    assert seen == [((side, side, 3), PASTE_EXPAND)]
    y0, x0 = round(75 - side / 2), round(120 - side / 2)
    assert (img[y0 : y0 + side, x0 : x0 + side] == 0).all()
    assert (img[: y0 - 1] == 128).all() and (img[:, x0 + side + 1 :] == 128).all()  # nothing else touched
    # a face at the edge: the square is completed by replicating the edge, only the inside is written
    assert paste_on_face(img, np.array([280, 150, 300, 190], np.float32), paint)
    assert seen[-1][0][:2] == (round(40 * PASTE_EXPAND),) * 2
    # most of the square outside the picture: nothing drawn, draw never called
    before, calls = img.copy(), len(seen)
    assert not paste_on_face(img, np.array([290, 190, 330, 240], np.float32), paint)
    assert len(seen) == calls and (img == before).all()


def test_dataset_crops_keep_boxes_on_faces(tmp_path):
    from maskwatch.evaluation.datasets import load_dataset

    samples = load_dataset(make_voc(tmp_path / "voc"))
    ds = DetectionDataset(samples, size=128, seed=1)
    img, boxes, labels, ignore = ds[0]
    assert img.shape == (128, 128, 3)
    for b, ig in zip(boxes, ignore):
        if ig:
            continue
        x1, y1, x2, y2 = (int(round(v)) for v in b)
        cx, cy = (x1 + x2) // 2, (y1 + y2) // 2
        assert img[cy, cx].max() > 100  # the ellipse is under the box centre


def test_short_training_lowers_loss_and_exports(tmp_path):
    voc = make_voc(tmp_path / "voc")
    recipe = DetectorRecipe(
        name="tiny",
        width=0.5,
        size=128,
        epochs=6,
        batch=4,
        lr=5e-3,
        threads=1,
        input_size=256,
        sources=[Source(voc, weight=1.0)],
        val=[(str(voc), None)],
        val_every=100,
    )
    path = train_detector(recipe, tmp_path / "run", tmp_path, log=lambda *a: None)
    rows = [json.loads(ln) for ln in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert len(rows) == 6
    assert rows[-1]["loss"] < rows[0]["loss"]
    assert "face_ap" in rows[-1]["val"]["voc"]  # validated after the last epoch
    det = Detector(str(path))
    assert det.input_size == 256
    assert isinstance(det.detect(np.zeros((100, 100, 3), np.uint8)), list)


def test_resume_continues_from_checkpoint(tmp_path):
    voc = make_voc(tmp_path / "voc", n=4)
    kw = dict(name="tiny", width=0.5, size=96, batch=4, threads=1, sources=[Source(voc)], val=[], val_every=100)
    train_detector(DetectorRecipe(epochs=1, **kw), tmp_path / "run", tmp_path, log=lambda *a: None)
    train_detector(DetectorRecipe(epochs=2, **kw), tmp_path / "run", tmp_path, log=lambda *a: None)
    rows = [json.loads(ln) for ln in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]


def test_finetune_from_shipped_model_reports_before_and_after(tmp_path):
    from maskwatch.train.finetune import finetune

    voc = make_voc(tmp_path / "mine", n=10)
    path, report = finetune("mobile", voc, tmp_path / "ft", epochs=4, batch=4, size=128, log=lambda *a: None)
    rows = [json.loads(ln) for ln in (tmp_path / "ft" / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == list(range(1, len(rows) + 1)) and all(r["loss"] > 0 for r in rows)
    assert set(report["before"]) >= {"map", "face_ap"} and set(report["after"]) >= {"map", "face_ap"}
    # never worse than it started: the epoch kept is the best by val mAP, the starting weights included
    best = max([report["before"]["map"], *(r["map"] for r in rows)])
    kept = report["before"]["map"] if report["epoch_kept"] == 0 else rows[report["epoch_kept"] - 1]["map"]
    assert kept == best
    assert report["train_pictures"] == 8 and report["val_pictures"] == 2
    det = Detector(str(path))
    shipped = Detector("mobile")
    assert det.input_size == shipped.input_size and det.score_threshold == shipped.score_threshold
    assert isinstance(det.detect(np.zeros((64, 64, 3), np.uint8)), list)


def test_train_cli_fine_tunes(tmp_path):
    from typer.testing import CliRunner

    from maskwatch.cli import app

    voc = make_voc(tmp_path / "mine", n=6)
    r = CliRunner().invoke(
        app, ["train", "--init", "mobile", "--data", str(voc), "--out", str(tmp_path / "o"), "--epochs", "1"]
    )
    assert r.exit_code == 0, r.output
    assert (tmp_path / "o" / "finetuned.onnx").is_file()
    assert "before" in r.stdout and "after" in r.stdout


def test_synthetic_masks_and_occluders_relabel_bare_faces():
    from maskwatch.train.classifier import STORE_SIZE, augment_batch, synthesize

    rng = np.random.default_rng(0)
    crops = np.full((40, STORE_SIZE, STORE_SIZE, 3), 150, np.uint8)
    labels = np.array([1] * 30 + [0] * 10)
    out, lab = synthesize(crops, labels, rng, rate=1.0)
    assert (lab[30:] == 0).all() and (out[30:] == 150).all()  # masked faces are left alone
    changed = (out[:30] != 150).any(axis=(1, 2, 3))
    assert changed.all()  # every bare face got a mask or an occluder
    assert {0, 1, 2} <= set(lab[:30].tolist())  # masked, still bare (hand / object), worn wrong
    x = augment_batch(out, 96, rng, train=True)
    assert tuple(x.shape) == (40, 3, 96, 96)


def test_drawn_coverings_change_face_crops_and_leave_the_rest():
    from maskwatch.train.classifier import STORE_EXPAND, STORE_SIZE, cover_crops

    crops = np.full((30, STORE_SIZE, STORE_SIZE, 3), 150, np.uint8)
    assert cover_crops(crops, np.random.default_rng(0), 0.0) is crops  # rate 0: nothing drawn
    out = cover_crops(crops, np.random.default_rng(0), 1.0)
    assert (crops == 150).all()  # the input is not drawn on
    changed = (out != 150).any(axis=3)
    assert changed.any(axis=(1, 2)).all()  # every crop got a covering
    # drawn on and around the face (the centred box), never in the corners of the stored crop
    face = STORE_SIZE / STORE_EXPAND
    corner = int((STORE_SIZE - 1.5 * face) / 2)
    assert corner > 0 and not changed[:, :corner, :corner].any()
    half = cover_crops(crops, np.random.default_rng(1), 0.5)
    assert 5 <= (half != 150).any(axis=(1, 2, 3)).sum() <= 25


def test_turned_crops_keep_their_size_and_turn_only_the_share_asked():
    from maskwatch.train.classifier import STORE_SIZE, turn_crops

    crops = np.zeros((40, STORE_SIZE, STORE_SIZE, 3), np.uint8)
    crops[:, : STORE_SIZE // 2] = 255  # white above, black below: any turn moves white into the bottom half
    assert turn_crops(crops, np.random.default_rng(0), 0.0) is crops
    out = turn_crops(crops, np.random.default_rng(0), 1.0)
    assert out.shape == crops.shape and (crops[:, STORE_SIZE // 2 :] == 0).all()  # the input is left as it was
    assert (out[:, -4:, STORE_SIZE // 2] > 0).sum() >= 10  # a 90 or 180 degree turn brings white to the bottom
    moved = (out != crops).any(axis=(1, 2, 3))
    assert moved.sum() >= 35  # all but near-zero angles change the crop
    half = (turn_crops(crops, np.random.default_rng(1), 0.3) != crops).any(axis=(1, 2, 3)).sum()
    assert 4 <= half <= 22


def test_negatives_lie_away_from_every_known_face():
    from maskwatch.train.negatives import is_negative, random_boxes

    known = np.array([[100, 100, 200, 200]], np.float32)
    boxes = np.array(
        [
            [100, 100, 200, 200],  # the face itself
            [150, 120, 230, 200],  # overlaps it
            [190, 120, 260, 190],  # an ear beside it: low IoU, centre outside -> negative
            [120, 130, 160, 170],  # inside the face (a mouth): centre inside -> not negative
            [400, 400, 450, 450],
        ],
        np.float32,
    )
    assert is_negative(boxes, known).tolist() == [False, False, True, False, True]
    assert is_negative(boxes, np.zeros((0, 4), np.float32)).all()
    rnd = random_boxes(640, 480, known, 20, np.random.default_rng(0))
    assert len(rnd) and is_negative(rnd, known).all()
    assert (rnd[:, 0] >= 0).all() and (rnd[:, 2] <= 640).all() and (rnd[:, 3] <= 480).all()


def test_verify_loss_teaches_faces_without_mask_labels():
    from maskwatch.train.classifier import FACE_ONLY, verify_loss

    logits = torch.tensor([[2.0, 0.0, 0.0, -1.0], [0.0, 0.0, 0.0, 3.0]], requires_grad=True)
    plain = torch.nn.functional.cross_entropy(logits, torch.tensor([0, 3]), label_smoothing=0.1)
    assert torch.allclose(verify_loss(logits, torch.tensor([0, 3])), plain)
    # a face of unknown mask state: only P(background) is penalised, the mask classes are free
    loss = verify_loss(logits[1:], torch.tensor([FACE_ONLY]))
    p = torch.softmax(logits[1], 0)
    assert torch.allclose(loss, -torch.log(1 - p[3]))
    loss.backward()
    g = logits.grad[1]
    assert g[3] > 0 and torch.allclose(g[0], g[1]) and torch.allclose(g[1], g[2])


def test_sample_evenly_takes_alike_from_each_size_group_and_passes_on_the_rest():
    from maskwatch.train.classifier import sample_evenly

    group = np.repeat([0, 1, 2, 3], [100, 5, 50, 1000])  # e.g. few close-ups, many tiny faces
    idx = sample_evenly(group, 200, np.random.default_rng(0))
    assert len(idx) == 200 and len(set(idx)) == 200 and idx == sorted(idx)
    counts = np.bincount(group[idx], minlength=4)
    assert counts[1] == 5 and counts[2] == 50  # small groups give all they have
    assert abs(int(counts[0]) - int(counts[3])) <= 1  # the rest is shared evenly
    assert len(sample_evenly(group, 10_000, np.random.default_rng(0))) == len(group)


def test_classifier_with_background_exports_a_veto(tmp_path):
    """A 4-class crop classifier exports a background label that Detector turns into a veto."""
    from maskwatch.core.registry import read_metadata
    from maskwatch.train.export import export_classifier
    from maskwatch.train.net import CropClassifier

    path = export_classifier(CropClassifier(width=0.5, num_classes=4), tmp_path / "v.onnx", 64, 1.3)
    meta = read_metadata(path)
    assert meta["labels"] == ["mask", "no_mask", "incorrect", "background"]
    import onnxruntime as ort

    out = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(
        None, {"crops": np.zeros((2, 3, 64, 64), np.float32)}
    )[0]
    assert out.shape == (2, 4) and np.allclose(out.sum(1), 1, atol=1e-5)


def test_finetune_server_keeps_its_crop_classifiers_and_veto(tmp_path):
    """Fine-tuning the two-stage server model carries its classifier files and second-stage settings."""
    from maskwatch.core.registry import classifier_files, read_metadata
    from maskwatch.models import MODEL_DIR
    from maskwatch.train.finetune import finetune

    voc = make_voc(tmp_path / "mine", n=6)
    path, _ = finetune("server", voc, tmp_path / "ft", epochs=1, batch=4, size=128, log=lambda *a: None)
    shipped = read_metadata(MODEL_DIR / "server.onnx")
    meta = read_metadata(path)
    for k in ("classifier", "classifier_weight", "verify_weight", "classifier_flip", "flip", "input_size"):
        assert meta.get(k) == shipped.get(k)
    assert all((path.parent / n).is_file() for n in classifier_files(meta))
    assert isinstance(Detector(str(path)).detect(np.zeros((64, 64, 3), np.uint8)), list)


def test_sure_labels_keep_only_confident_faces():
    from maskwatch.evaluation.datasets import UNKNOWN
    from maskwatch.train.pseudo import sure_labels

    probs = np.array([[0.95, 0.04, 0.01], [0.6, 0.3, 0.1], [0.02, 0.03, 0.95], [0.0, 1.0, 0.0]])
    face = np.array([0.9, 0.9, 0.8, 0.2])  # the last is sure of its class but likely no face
    assert sure_labels(probs, face).tolist() == [0, UNKNOWN, 2, UNKNOWN]
    assert sure_labels(probs, None).tolist() == [0, UNKNOWN, 2, 1]
    assert sure_labels(np.zeros((0, 3)), np.zeros(0)).shape == (0,)


def test_pseudo_label_fills_only_unlabelled_faces_and_caches(tmp_path):
    """Faces without a mask label get the classifier's sure class; labelled, ignored and tiny faces
    keep theirs; a repeated picture is labelled once; a second run reads the cache."""
    from maskwatch.evaluation.datasets import UNKNOWN, Sample
    from maskwatch.train.export import export_classifier
    from maskwatch.train.net import CropClassifier
    from maskwatch.train.pseudo import pseudo_label

    net = CropClassifier(width=0.5, num_classes=4)
    with torch.no_grad():  # a classifier that calls every crop a bare face, surely
        net.fc.weight.zero_()
        net.fc.bias.copy_(torch.tensor([0.0, 12.0, 0.0, 0.0]))
    cls = export_classifier(net, tmp_path / "sure.onnx", 64, 1.3)
    img = tmp_path / "crowd.jpg"
    cv2.imwrite(str(img), np.random.default_rng(0).integers(0, 255, (120, 160, 3), dtype=np.uint8))
    boxes = np.array([[10, 10, 50, 50], [60, 10, 100, 50], [110, 10, 120, 20], [10, 60, 50, 100]], np.float32)
    s = Sample(img, boxes, np.array([0, UNKNOWN, UNKNOWN, UNKNOWN]), np.array([False, False, False, True]))
    assert pseudo_label([s, s], cls, tmp_path / "cache", log=lambda *a: None) == 1
    assert s.labels.tolist() == [0, 1, UNKNOWN, UNKNOWN]  # labelled kept, tiny (10 px) and ignored left alone
    img.unlink()  # the answers now come from the cache
    again = Sample(img, boxes, np.array([0, UNKNOWN, UNKNOWN, UNKNOWN]), np.array([False, False, False, True]))
    assert pseudo_label([again], cls, tmp_path / "cache", log=lambda *a: None) == 1
    assert again.labels.tolist() == [0, 1, UNKNOWN, UNKNOWN]


def test_rare_pictures_are_the_distinct_ones_with_a_face_worn_wrong(tmp_path):
    from maskwatch.evaluation.datasets import Sample
    from maskwatch.train.data import rare_pictures

    box = np.array([[0, 0, 20, 20], [30, 0, 50, 20]], np.float32)
    a = Sample(tmp_path / "a.jpg", box, np.array([0, 2]), np.zeros(2, bool))
    b = Sample(tmp_path / "b.jpg", box, np.array([0, 1]), np.zeros(2, bool))
    assert rare_pictures([a, b, a, b]) == [a]


def test_build_samples_draws_scene_pictures_with_a_face_worn_wrong_again(tmp_path):
    from maskwatch.train.data import build_samples

    voc = make_voc(tmp_path / "voc", n=3)
    xml = voc / "annotations" / "0.xml"
    xml.write_text(
        xml.read_text().replace("without_mask", "mask_weared_incorrect").replace("with_mask", "mask_weared_incorrect")
    )
    plain = build_samples([Source(voc)], tmp_path / "cache")
    more = build_samples([Source(voc)], tmp_path / "cache", rare_repeat=2)
    assert len(plain) == 3 and len(more) == 5
    assert [s.image.name for s in more[3:]] == ["0.jpg", "0.jpg"] and (more[3].labels == 2).all()


def test_classifier_training_steps_run_on_made_up_crops(tmp_path, monkeypatch):
    """train_classifier, split into named steps (crops, validation set, batches, figures), runs end to end
    with a background class and unlabelled faces, logs every figure and exports a model the runtime loads."""
    from maskwatch.core.detector import CropModel
    from maskwatch.train import classifier, negatives

    def items(n, label, tag):
        return [
            (f"{tag}{i}", np.array([0, 0, 10, 10], np.float32), i % 3 if label is None else label) for i in range(n)
        ]

    def extract(its):
        crops = np.random.default_rng(len(its)).integers(0, 255, (len(its), 128, 128, 3), dtype=np.uint8)
        return crops, np.array([it[2] for it in its], np.int64)

    monkeypatch.setattr(classifier, "collect_items", lambda data, cache: (items(40, None, "t"), items(12, None, "v")))
    monkeypatch.setattr(classifier, "extract", extract)
    monkeypatch.setattr(
        classifier,
        "collect_faces",
        lambda data, n, seed, val=False, by_size=False: items(6 if val else 10, classifier.FACE_ONLY, "f"),
    )
    monkeypatch.setattr(negatives, "negative_sources", lambda data: ("tr", "va"))
    monkeypatch.setattr(negatives, "cache_tag", lambda det, seed: "x")
    monkeypatch.setattr(negatives, "mine", lambda det, src, *a: items(8 if src == "tr" else 5, 3, "n"))
    recipe = classifier.ClassifierRecipe(
        name="tiny_cls", epochs=2, batch=16, input_size=32, width=0.5, background=0.25, faces=0.25, threads=1
    )
    rows = []
    path = classifier.train_classifier(
        recipe, tmp_path / "run", tmp_path, log=rows.append, detector=tmp_path / "d.onnx"
    )
    logged = [json.loads(r) for r in rows if r.startswith("{")]
    assert [r["epoch"] for r in logged] == [1, 2]
    assert {
        "loss",
        "val_accuracy",
        "per_class",
        "hand_over_mouth_no_mask",
        "faces_called_background",
        "wider_faces_called_background",
        "mistakes_called_background",
        "seconds",
    } <= set(logged[-1])
    probs, face = CropModel.load(path, 1)(np.zeros((64, 64, 3), np.uint8), np.array([[8, 8, 40, 40]], np.float32))
    assert probs.shape == (1, 3) and face is not None and face.shape == (1,)  # the background class is a veto
    # distilled from that file: its probabilities on every crop are targets too, and the figure is logged
    student = classifier.ClassifierRecipe(**{**recipe.__dict__, "name": "tiny_student", "distill_from": str(path)})
    rows.clear()
    classifier.train_classifier(student, tmp_path / "student", tmp_path, log=rows.append, detector=tmp_path / "d.onnx")
    taught = [json.loads(r) for r in rows if r.startswith("{")]
    assert [r["epoch"] for r in taught] == [1, 2] and all(r["distill"] >= 0 for r in taught)


def test_distillation_loss_is_zero_only_where_the_student_agrees():
    import torch

    from maskwatch.train.classifier import distill_loss

    teacher = torch.tensor([[0.7, 0.2, 0.05, 0.05], [0.1, 0.1, 0.1, 0.7]])
    assert float(distill_loss(teacher.log(), teacher)) == pytest.approx(0.0, abs=1e-6)
    assert float(distill_loss(torch.zeros(2, 4), teacher)) > 0.1  # a uniform student is far from it


def test_shipped_models_carry_the_settings_their_recipes_write():
    """`maskwatch train mobile|server --install` rebuilds the shipped files: their runtime settings
    (mobile's cascade without a veto, server's classifier on every face) are the pipeline's."""
    from maskwatch.core.registry import classifier_files, read_metadata
    from maskwatch.models import MODEL_DIR
    from maskwatch.train import pipeline

    for name, settings, classifiers in (
        ("mobile", pipeline.MOBILE_SETTINGS, pipeline.MOBILE_CLASSIFIERS + [pipeline.MOBILE_RESCUE]),
        ("server", pipeline.SERVER_SETTINGS, pipeline.SERVER_CLASSIFIERS),
    ):
        meta = read_metadata(MODEL_DIR / f"{name}.onnx")
        assert {k: meta.get(k) for k in settings} == settings, name
        assert classifier_files(meta) == [f"{c}.onnx" for c in classifiers]  # the rescue's last
    # mobile's threshold is the recipe's (moved up for the rescue), the best-F1 one kept beside it
    meta = read_metadata(MODEL_DIR / "mobile.onnx")
    assert meta["score_threshold"] == pipeline.MOBILE_THRESHOLD > meta["threshold_best_f1"]
    assert meta["rescue_classifier"] == f"{pipeline.MOBILE_RESCUE}.onnx"
    mobile = Detector("mobile")
    assert 0 < mobile._cls_below <= 1 and mobile._verify_weight == 0  # asks only where unsure; never vetoes
    assert len(mobile._classifiers) == 1
    assert Detector("mobile", classifier_below=0)._classifiers == []  # never asked: not even loaded
    assert Detector("server")._cls_below > 1


def test_a_turned_crop_keeps_each_box_tight_on_its_face():
    import random

    from maskwatch.train.data import turn_crop, turned_box

    m90 = cv2.getRotationMatrix2D((64, 64), 90, 1.0)
    assert np.allclose(turned_box(np.array([10, 20, 50, 100], np.float32), m90), [20, 78, 100, 118], atol=1e-3)
    for seed in range(20):
        img = np.full((128, 128, 3), 40, np.uint8)
        cv2.ellipse(img, (64, 60), (20, 30), 0, 0, 360, (255, 255, 255), -1)  # a tall oval face
        box = np.array([[44, 30, 84, 90]], np.float32)
        out, nb, labels, ignore = turn_crop(img, box, np.array([0]), np.array([False]), random.Random(seed), 0)
        assert out.shape == img.shape and labels.tolist() == [0] and not ignore[0]
        ys, xs = np.nonzero(out[..., 0] > 128)
        x1, y1, x2, y2 = nb[0]
        # the turned oval fills its box: every white pixel inside, and the box no bigger than its extent
        assert xs.min() >= x1 - 2 and xs.max() <= x2 + 2 and ys.min() >= y1 - 2 and ys.max() <= y2 + 2
        assert (x2 - x1) <= xs.max() - xs.min() + 4 and (y2 - y1) <= ys.max() - ys.min() + 4


def test_drawn_coverings_keep_the_labels_and_skip_small_or_ignored_faces():
    import random

    from maskwatch.train.data import cover_faces

    img = np.full((200, 200, 3), 128, np.uint8)
    boxes = np.array([[20, 20, 100, 120], [150, 150, 165, 165], [110, 20, 190, 120]], np.float32)
    before = img.copy()
    cover_faces(img, boxes, np.array([False, False, True]), 1.0, random.Random(0))
    changed = np.any(img != before, axis=2)
    assert changed[20:120, 20:100].any()  # the big face got a covering
    assert not changed[150:165, 150:165].any() or changed[150:165, 150:165].mean() < 0.05  # too small: none
    assert not changed[40:100, 130:170].any()  # ignored: none


def test_held_out_pictures_are_never_trained_on(tmp_path):
    from maskwatch.evaluation.datasets import in_holdout
    from maskwatch.train.data import build_samples

    voc = make_voc(tmp_path / "webmask2020-facemask", n=30)
    drawn = build_samples([Source(voc, None, holdout=0.3)], tmp_path / "cache")
    kept = {p.stem for p in (voc / "images").iterdir()} - {s.image.stem for s in drawn}
    assert drawn and kept and all(in_holdout(voc / "images" / f"{k}.jpg", 0.3) for k in kept)
    assert not any(in_holdout(s.image, 0.3) for s in drawn)


def test_the_masked_recipe_trains_on_the_masked_mix():
    from pathlib import Path

    from maskwatch.evaluation.datasets import HOLDOUT
    from maskwatch.train.loop import masked_sources
    from maskwatch.train.recipes import DETECTORS

    r = DETECTORS["yunet-masked"]
    assert r.mix == "masked" and r.cover > 0 and r.rotate > 0 and r.init_from == "yunet-ft2" and r.distill > 0
    sources, val = masked_sources(Path("data"))
    held = {src.root.name: src.holdout for src in sources if src.holdout}
    assert held == HOLDOUT and any(src.root.name == "webmask2020-facemask" for src in sources)
    assert Path("data") / "kaggle-facemask" / "val.txt" in {Path(v[1]) for v in val}


def test_a_second_blend_of_one_run_is_not_trained_again(tmp_path):
    """``weights_of``: another blend of a trained run comes from that run's last weights, exported
    again (no training): (1 - blend) x the trained weights + blend x the start, like the first blend."""
    import json

    import onnx
    from onnx import numpy_helper

    from maskwatch.train.loop import reblend_detector

    voc = make_voc(tmp_path / "voc", n=4)
    kw = dict(name="tiny", width=0.5, size=96, batch=4, threads=1, sources=[Source(voc)], val=[], val_every=100)
    quiet = lambda *a: None  # noqa: E731
    start = train_detector(DetectorRecipe(epochs=1, seed=1, **kw), tmp_path / "start", tmp_path, log=quiet)
    half = DetectorRecipe(epochs=1, seed=2, init=str(start), blend=0.5, **kw)
    first = train_detector(half, tmp_path / "half", tmp_path, log=quiet)
    other = DetectorRecipe(**{**vars(half), "name": "tiny7", "blend": 0.3, "weights_of": "half"})
    second = reblend_detector(other, tmp_path / "half", tmp_path / "tiny7", log=quiet)

    def weights(path):
        return {i.name: numpy_helper.to_array(i) for i in onnx.load(str(path)).graph.initializer}

    s, h, m = weights(start), weights(first), weights(second)
    floats = [k for k in m if m[k].dtype.kind == "f"]
    assert floats and any(not np.allclose(h[k], s[k]) for k in floats)
    for k in floats:  # the trained weights are 2 x half - start
        np.testing.assert_allclose(m[k], 0.7 * (2 * h[k] - s[k]) + 0.3 * s[k], rtol=1e-3, atol=1e-4)
    row = json.loads((tmp_path / "tiny7" / "log.jsonl").read_text())
    assert row["epoch"] == 1 and row["weights_of"] == str(tmp_path / "half")
    assert not (tmp_path / "tiny7" / "last.ckpt").exists()  # nothing trained there
    assert isinstance(Detector(str(second)).detect(np.zeros((100, 100, 3), np.uint8)), list)


def test_a_blended_recipe_averages_its_result_with_its_start(tmp_path):
    """``blend``: the last epoch's file is (1 - blend) x the trained weights + blend x the starting
    file's (WiSE-FT), once; a file of another network cannot be blended in."""
    import onnx
    from onnx import numpy_helper

    from maskwatch.core.errors import MaskwatchError
    from maskwatch.train.export import blend_onnx_weights

    voc = make_voc(tmp_path / "voc", n=4)
    kw = dict(name="tiny", width=0.5, size=96, batch=4, threads=1, sources=[Source(voc)], val=[], val_every=100)
    quiet = lambda *a: None  # noqa: E731
    start = train_detector(DetectorRecipe(epochs=1, seed=1, **kw), tmp_path / "start", tmp_path, log=quiet)
    plain = train_detector(
        DetectorRecipe(epochs=1, seed=2, init=str(start), **kw), tmp_path / "plain", tmp_path, log=quiet
    )
    mixed = train_detector(
        DetectorRecipe(epochs=1, seed=2, init=str(start), blend=0.25, **kw), tmp_path / "mixed", tmp_path, log=quiet
    )

    def weights(path):
        return {i.name: numpy_helper.to_array(i) for i in onnx.load(str(path)).graph.initializer}

    s, p, m = weights(start), weights(plain), weights(mixed)
    floats = [k for k in m if m[k].dtype.kind == "f"]
    assert floats and any(not np.allclose(p[k], s[k]) for k in floats)  # training moved the weights
    for k in floats:
        np.testing.assert_allclose(m[k], 0.75 * p[k] + 0.25 * s[k], rtol=1e-4, atol=1e-5)
    assert isinstance(Detector(str(mixed)).detect(np.zeros((100, 100, 3), np.uint8)), list)  # still a model
    other = train_detector(
        DetectorRecipe(epochs=1, **{**kw, "width": 0.25, "name": "other"}), tmp_path / "other", tmp_path, log=quiet
    )
    with pytest.raises(MaskwatchError, match="not the network"):
        blend_onnx_weights(mixed, other, 0.5)
    with pytest.raises(ValueError, match="share"):
        blend_onnx_weights(mixed, start, 1.0)


def test_a_soup_averages_its_ingredients_by_share_and_rejects_bad_shares(tmp_path):
    """``soup``: a recipe with no training of its own whose file is the share-weighted average of
    other recipes' files (three tiny networks from one start here), logged as finished; shares that
    do not sum to 1, or a single ingredient, are refused."""
    import copy

    import onnx
    from onnx import numpy_helper

    from maskwatch.train.loop import soup_detector

    voc = make_voc(tmp_path / "voc", n=4)
    kw = dict(name="tiny", width=0.5, size=96, batch=4, threads=1, sources=[Source(voc)], val=[], val_every=100)
    quiet = lambda *a: None  # noqa: E731
    start = train_detector(DetectorRecipe(epochs=1, seed=1, **kw), tmp_path / "start", tmp_path, log=quiet)
    files = {
        f"t{seed}": train_detector(
            DetectorRecipe(epochs=1, seed=seed, init=str(start), **{**kw, "name": f"t{seed}"}),
            tmp_path / f"t{seed}",
            tmp_path,
            log=quiet,
        )
        for seed in (2, 3, 4)
    }
    recipe = DetectorRecipe(name="soup", epochs=0, soup={"t2": 0.5, "t3": 0.3, "t4": 0.2})
    out = soup_detector(recipe, files, tmp_path / "soup", log=quiet)

    def weights(path):
        return {i.name: numpy_helper.to_array(i) for i in onnx.load(str(path)).graph.initializer}

    w = {n: weights(f) for n, f in files.items()}
    got = weights(out)
    floats = [k for k in got if got[k].dtype.kind == "f"]
    assert floats and any(not np.allclose(w["t2"][k], w["t3"][k]) for k in floats)  # the ingredients differ
    for k in floats:
        want = 0.5 * w["t2"][k] + 0.3 * w["t3"][k] + 0.2 * w["t4"][k]
        np.testing.assert_allclose(got[k], want, rtol=1e-4, atol=1e-5)
    assert isinstance(Detector(str(out)).detect(np.zeros((100, 100, 3), np.uint8)), list)
    assert json.loads((tmp_path / "soup" / "log.jsonl").read_text().splitlines()[-1])["epoch"] == 0
    for bad in ({"t2": 0.5, "t3": 0.3}, {"t2": 1.0}):
        wrong = copy.deepcopy(recipe)
        wrong.soup = bad
        with pytest.raises(ValueError, match="soup"):
            soup_detector(wrong, files, tmp_path / "bad", log=quiet)


def test_a_narrower_stage_2_learns_the_teachers_features_and_nothing_else_moves(tmp_path):
    """``mimic_stage2``: a ``YuNetMaskNarrow`` student, every tensor it shares with its YuNet-n-layout
    teacher copied, is taught on made-up crops to give the teacher's stage-2 features: its error
    falls and only stage 2 changes."""
    from maskwatch.evaluation.datasets import load_dataset
    from maskwatch.train.export import export_detector, load_onnx_weights
    from maskwatch.train.loop import mimic_stage2
    from maskwatch.train.yunet import YuNetMask

    torch.manual_seed(0)
    teacher = YuNetMask.of_arch("YuNetMask").eval()
    with torch.no_grad():  # no two tensors alike (the exporter would store them once)
        for p in teacher.parameters():
            p.add_(torch.randn_like(p) * 0.01)
    student = YuNetMask.of_arch("YuNetMaskNarrow")
    assert student.config["arch"] == "YuNetMaskNarrow"
    assert student.base.stage2[1].pw.weight.shape == (32, 16, 1, 1)
    shared = load_onnx_weights(student, export_detector(teacher, tmp_path / "t.onnx"))
    new = ("base.stage2.1.", "base.stage2.2.", "base.stage2.3.pw.weight", "base.outs.kps.")  # (no landmarks in a file)
    assert shared == len([k for k in student.state_dict() if not k.startswith(new)])
    before = {k: v.clone() for k, v in student.state_dict().items()}
    ds = DetectionDataset(load_dataset(make_voc(tmp_path / "voc")), size=96, seed=1)
    imgs = torch.stack([torch.from_numpy(ds[i][0]).permute(2, 0, 1).float() for i in range(4)])

    def error() -> float:
        with torch.no_grad():
            t = teacher.base.stage2_out(imgs)
            return float((student.base.stage2_out(imgs) - t).pow(2).mean() / t.pow(2).mean())

    start = error()
    recipe = DetectorRecipe(arch="YuNetMaskNarrow", mimic_epochs=4, lr=3e-3, batch=4, seed=0)
    losses = mimic_stage2(student, teacher, ds, recipe, log=lambda *a: None)
    assert len(losses) == 4 and losses[-1] < losses[0]
    assert error() < start
    moved = {k for k, v in student.state_dict().items() if not torch.equal(v, before[k])}
    assert moved and all(k.startswith("base.stage2.") for k in moved)


def test_a_distilled_classifier_takes_its_teacher_from_the_training_folder(tmp_path, monkeypatch):
    """``distill_from`` naming a classifier recipe: its file in the training folder (trained first where
    missing, as a detector's ``pseudo_from``), not the shipped one."""
    from maskwatch.train import pipeline

    seen: dict[str, str] = {}
    trained: list[str] = []

    def fake_train(recipe, out, data, resume=True, detector=None):
        seen[recipe.name] = recipe.distill_from
        trained.append(recipe.name)
        path = out / f"{recipe.name}.onnx"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"onnx")
        return path

    monkeypatch.setattr(pipeline, "train_classifier", fake_train)
    monkeypatch.setattr(pipeline, "train_recipe_chain", lambda *a, **k: tmp_path / "det.onnx")
    data, out = tmp_path / "data", tmp_path / "runs"
    data.mkdir()
    pipeline.run_recipe("mobile_cls4", data, out)
    assert trained == ["server_fvcls", "mobile_cls4"]  # the teacher first: it was missing
    assert seen["mobile_cls4"] == str(out / "server_fvcls" / "server_fvcls.onnx")
    assert pipeline.CLASSIFIERS["mobile_cls4"].distill_from == "server_fvcls"  # the recipe left alone
    trained.clear()
    pipeline.run_recipe("mobile_cls4", data, out)
    assert trained == ["mobile_cls4"]  # the teacher's file is there now: not trained again
