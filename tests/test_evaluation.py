import json

import cv2
import numpy as np
import pytest

from maskwatch.evaluation.datasets import UNKNOWN, load_dataset
from maskwatch.evaluation.metrics import ImageResult, average_precision, best_f1_threshold, evaluate_results

P = lambda *rows: np.array(rows, np.float32)  # noqa: E731
MASK, NO, INC = (1, 0, 0), (0, 1, 0), (0, 0, 1)


def test_average_precision_all_point_interpolation():
    # ranked: TP, FP, TP with 2 truths -> recall .5 .5 1, precision 1 .5 .667
    rec = np.array([0.5, 0.5, 1.0])
    prec = np.array([1.0, 0.5, 2 / 3])
    assert average_precision(rec, prec) == pytest.approx(0.5 * 1.0 + 0.5 * 2 / 3)


def test_tiny_made_up_case_matches_hand_computed_ap():
    # picture 1: two masked faces; detections: one hit (0.9), one miss (0.8), one hit (0.7)
    r1 = ImageResult(
        pred_boxes=P([0, 0, 10, 10], [50, 50, 60, 60], [20, 0, 30, 10]),
        pred_scores=[0.9, 0.8, 0.7],
        pred_probs=[MASK, MASK, MASK],
        gt_boxes=P([0, 0, 10, 10], [20, 0, 30, 10]),
        gt_labels=[0, 0],
    )
    # picture 2: one unmasked face found, and a duplicate detection of it
    r2 = ImageResult(
        pred_boxes=P([0, 0, 10, 10], [1, 0, 11, 10]),
        pred_scores=[0.6, 0.5],
        pred_probs=[NO, NO],
        gt_boxes=P([0, 0, 10, 10]),
        gt_labels=[1],
    )
    m = evaluate_results([r1, r2], iou_thr=0.5, score_threshold=0.55)
    # mask: ranking 0.9 TP, 0.8 FP, 0.7 TP over 2 truths -> AP = .5*1 + .5*(2/3)
    assert m.ap["mask"] == pytest.approx(0.5 + 1 / 3)
    # no_mask: 0.6 TP then duplicate FP -> AP 1
    assert m.ap["no_mask"] == pytest.approx(1.0)
    assert "incorrect" not in m.ap  # no truth of that class
    assert m.map == pytest.approx((0.5 + 1 / 3 + 1.0) / 2)
    # face AP: 0.9 TP, 0.8 FP, 0.7 TP, 0.6 TP, 0.5 FP over 3 faces
    # recall .33 .33 .67 1 1; precision 1 .5 .67 .75 .6 -> 1/3*1 + 1/3*.75 + 1/3*.75
    assert m.face_ap == pytest.approx((1 + 0.75 + 0.75) / 3)
    # at threshold .55: faces found 3 of 3 (0.7 and 0.6 pass), all labels right
    assert m.recall == pytest.approx(1.0)
    assert m.label_accuracy == pytest.approx(1.0)
    assert m.recall_by_height["<16"]["faces"] == 3


def test_ignored_faces_neither_count_nor_penalise():
    r = ImageResult(
        P([0, 0, 10, 10], [40, 40, 50, 50]),
        [0.9, 0.8],
        [MASK, MASK],
        P([0, 0, 10, 10], [40, 40, 50, 50]),
        [0, 0],
        gt_ignore=[False, True],
    )
    m = evaluate_results([r])
    assert m.face_ap == pytest.approx(1.0)
    assert m.gt_faces["face"] == 1


def test_wrong_label_lowers_class_ap_and_accuracy_not_face_ap():
    r = ImageResult(P([0, 0, 10, 10]), [0.9], [NO], P([0, 0, 10, 10]), [0])
    m = evaluate_results([r], score_threshold=0.5)
    assert m.face_ap == pytest.approx(1.0)
    assert m.label_accuracy == 0.0
    assert m.confusion["rows_truth_cols_pred"][0][1] == 1


def test_best_f1_threshold():
    r = ImageResult(P([0, 0, 10, 10], [30, 30, 40, 40]), [0.9, 0.4], [MASK, MASK], P([0, 0, 10, 10]), [0])
    thr, f1 = best_f1_threshold([r])
    assert thr == pytest.approx(0.9) and f1 == pytest.approx(1.0)


# -- readers -----------------------------------------------------------------------------------


def _write_img(path, w=64, h=48):
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.zeros((h, w, 3), np.uint8))


def test_read_voc_with_split(tmp_path):
    for name in ("a", "b"):
        _write_img(tmp_path / "images" / f"{name}.jpg")
        (tmp_path / "annotations").mkdir(exist_ok=True)
        (tmp_path / "annotations" / f"{name}.xml").write_text(
            f"<annotation><filename>{name}.jpg</filename>"
            "<object><name>with_mask</name><bndbox><xmin>1</xmin><ymin>2</ymin><xmax>11</xmax><ymax>12</ymax></bndbox></object>"
            "<object><name>mask_weared_incorrect</name><difficult>1</difficult><bndbox><xmin>20</xmin><ymin>2</ymin><xmax>30</xmax><ymax>12</ymax></bndbox></object>"
            "</annotation>"
        )
    (tmp_path / "val.txt").write_text("b\n")
    s = load_dataset(tmp_path, "val.txt")
    assert len(s) == 1 and s[0].image.name == "b.jpg"
    assert s[0].boxes.tolist() == [[1, 2, 11, 12], [20, 2, 30, 12]]
    assert s[0].labels.tolist() == [0, 2]
    assert s[0].ignore.tolist() == [False, True]


def test_read_yolo(tmp_path):
    _write_img(tmp_path / "images" / "x.jpg", 100, 50)
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "x.txt").write_text("1 0.5 0.5 0.2 0.4\n")
    (tmp_path / "classes.txt").write_text("mask\nno_mask\n")
    s = load_dataset(tmp_path)
    assert s[0].labels.tolist() == [1]
    assert s[0].boxes[0].tolist() == pytest.approx([40, 15, 60, 35])


@pytest.mark.parametrize(
    "yaml_text",
    [
        "path: .\nnames:\n  - no_mask\n  - mask\n  - incorrect\n",  # block style (was read as no names: wrong labels)
        "names: ['no_mask', 'mask', 'incorrect']\n",
        "names:\n  0: no_mask\n  1: mask\n  2: incorrect\n",
    ],
)
def test_read_yolo_data_yaml_names(tmp_path, yaml_text):
    _write_img(tmp_path / "images" / "x.jpg", 100, 50)
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "x.txt").write_text("0 0.5 0.5 0.2 0.4\n1 0.2 0.2 0.1 0.1\n")
    (tmp_path / "data.yaml").write_text(yaml_text)
    s = load_dataset(tmp_path)
    assert s[0].labels.tolist() == [1, 0]  # no_mask, mask in LABELS order


def test_read_yolo_bad_data_yaml_is_named(tmp_path):
    from maskwatch import MaskwatchError

    _write_img(tmp_path / "images" / "x.jpg", 100, 50)
    (tmp_path / "labels").mkdir()
    (tmp_path / "data.yaml").write_text("names: [mask, no_mask\n")
    with pytest.raises(MaskwatchError, match="data.yaml"):
        load_dataset(tmp_path)


def test_read_wider(tmp_path):
    _write_img(tmp_path / "images" / "0--Parade" / "p.jpg")
    (tmp_path / "wider_face_bbx_gt.txt").write_text(
        "0--Parade/p.jpg\n2\n10 10 20 30 0 0 0 0 0 0\n40 5 3 3 0 0 0 1 0 0\n"
    )
    s = load_dataset(tmp_path)
    assert s[0].boxes.tolist() == [[10, 10, 30, 40], [40, 5, 43, 8]]
    assert s[0].labels.tolist() == [UNKNOWN, UNKNOWN]
    assert s[0].ignore.tolist() == [False, True]  # invalid flag


def test_read_coco(tmp_path):
    _write_img(tmp_path / "images" / "c.jpg")
    doc = {
        "images": [{"id": 7, "file_name": "c.jpg", "width": 64, "height": 48}],
        "categories": [{"id": 1, "name": "no_mask"}, {"id": 2, "name": "mask"}],
        "annotations": [{"id": 1, "image_id": 7, "category_id": 2, "bbox": [5, 6, 10, 12]}],
    }
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "instances.json").write_text(json.dumps(doc))
    s = load_dataset(tmp_path)
    assert s[0].image.name == "c.jpg" and s[0].labels.tolist() == [0]
    assert s[0].boxes.tolist() == [[5, 6, 15, 18]]


def test_eval_result_is_typed_and_its_dict_keeps_the_json_keys():
    from maskwatch.evaluation.metrics import EvalResult

    r = ImageResult(
        np.array([[0, 0, 10, 10]], float),
        np.array([0.9]),
        np.array([[0.8, 0.1, 0.1]]),
        np.array([[0, 0, 10, 10]], float),
        np.array([0]),
    )
    m = evaluate_results([r])
    assert isinstance(m, EvalResult) and m.images == 1 and m.ap == {"mask": pytest.approx(1.0)}
    assert set(m.curves) == {"mask", "face"} and len(m.curves["face"]) == 2
    d = m.to_dict()
    assert "_curves" not in d and "curves" not in d and d["map"] == pytest.approx(1.0)
    assert list(d)[:6] == ["images", "iou", "score_threshold", "ap", "gt_faces", "map"]
    faces_only = evaluate_results([ImageResult(r.pred_boxes, r.pred_scores, r.pred_probs, r.gt_boxes, np.array([-1]))])
    assert faces_only.map is None and "map" not in faces_only.to_dict()


def test_ignored_boxes_are_treated_the_same_by_every_figure():
    """One matcher: the AP ranking and the operating point (recall, precision, label accuracy) agree on
    a detection that overlaps an ignored face more than a valid one (the operating point once gave
    it to the ignored face, and counted the valid face as missed)."""
    from maskwatch.evaluation.metrics import IGNORED, TRUE, ImageResult, evaluate_results, match_image, pr_curve

    gt = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60]], np.float32)  # valid, ignored, ignored
    ignore = np.array([False, True, True])
    pred = np.array([[1, 0, 11, 10], [50, 50, 60, 60], [50, 51, 60, 61], [80, 80, 90, 90]], np.float32)
    scores = np.array([0.9, 0.8, 0.7, 0.6], np.float32)
    probs = np.tile([[0.1, 0.8, 0.1]], (4, 1))
    hit, truth = match_image(pred, scores, gt, ignore, 0.5)
    assert hit.tolist() == [TRUE, IGNORED, IGNORED, 0] and truth[0] == 0
    r = ImageResult(pred, scores, probs, gt, np.array([1, 0, 0]), ignore)
    m = evaluate_results([r], 0.5, score_threshold=0.5)
    rec, prec, _, n = pr_curve([r], 0.5)
    assert n == 1 and rec[-1] == m.recall == 1.0 and prec[-1] == m.precision == 0.5
    assert m.label_accuracy == 1.0 and m.face_ap == 1.0


def test_head_boxes_match_a_face_box_inside_a_whole_head_label():
    # a whole-head label (hair and hat) 100x140; the face box inside it has IoU 0.39 with it
    head = P([0, 0, 100, 140])
    face = P([15, 40, 85, 118])
    r = ImageResult(face, [0.9], [MASK], head, [0])
    assert evaluate_results([r], 0.5, 0.5).recall == 0.0  # IoU alone: a miss and a false detection
    m = evaluate_results([r], 0.5, 0.5, head_boxes=True)
    assert m.recall == 1.0 and m.precision == 1.0 and m.face_ap == pytest.approx(1.0) and m.to_dict()["head_boxes"]
    # mostly outside the label, or far smaller than it: still no match
    for box in ([60, 40, 130, 118], [45, 60, 55, 70]):
        r = ImageResult(P(box), [0.9], [MASK], head, [0])
        assert evaluate_results([r], 0.5, 0.5, head_boxes=True).recall == 0.0, box


def test_recall_by_label_and_the_300_px_bin():
    big, small = P([0, 0, 320, 320]), P([400, 400, 420, 420])
    r = ImageResult(big, [0.9], [MASK], np.concatenate([big, small]), [0, 1])
    m = evaluate_results([r], 0.5, 0.5)
    assert m.recall_by_label == {"mask": {"recall": 1.0, "faces": 1}, "no_mask": {"recall": 0.0, "faces": 1}}
    assert m.recall_by_height[">=300"] == {"recall": 1.0, "faces": 1}
    assert m.recall_by_height["16-32"] == {"recall": 0.0, "faces": 1}
    assert list(m.recall_by_height) == ["<16", "16-32", "32-64", "64-300", ">=300"]


def test_faces_the_labels_leave_out_count_neither_way_once_another_detectors_faces_mark_them():
    """``with_unlabelled``: another detector's faces away from every labelled box become ignored truth
    (a detection on one is neither true nor false: precision no longer counts it); one near a labelled
    box (overlapping it, or inside a whole-head label) is that face and adds nothing; recall and the
    labelled faces are untouched."""
    from maskwatch.evaluation.datasets import Sample, with_unlabelled

    sample = Sample("p.jpg", P([0, 0, 40, 40]), [0])
    teacher = P([100, 100, 130, 130, 0.9], [5, 8, 35, 38, 0.95], [60, 0, 90, 30, 0.8])  # away, inside, away
    marked = with_unlabelled(sample, teacher)
    assert marked.boxes.tolist() == [[0, 0, 40, 40], [100, 100, 130, 130], [60, 0, 90, 30]]
    assert marked.ignore.tolist() == [False, True, True] and marked.labels.tolist() == [0, UNKNOWN, UNKNOWN]
    assert with_unlabelled(sample, np.zeros((0, 5))) is sample  # nothing found: the sample as it was
    # the model found the labelled face and two faces nobody labelled
    pred = {"pred_boxes": P([0, 0, 40, 40], [101, 99, 131, 129], [61, 1, 91, 31]), "pred_scores": [0.9, 0.8, 0.7]}
    probs = [MASK, NO, NO]

    def result(s):
        return ImageResult(**pred, pred_probs=probs, gt_boxes=s.boxes, gt_labels=s.labels, gt_ignore=s.ignore)

    plain = evaluate_results([result(sample)], 0.5, 0.5)
    counted = evaluate_results([result(marked)], 0.5, 0.5)
    assert plain.recall == counted.recall == 1.0
    assert plain.precision == pytest.approx(1 / 3) and counted.precision == 1.0
    assert counted.gt_faces["face"] == plain.gt_faces["face"] == 1
