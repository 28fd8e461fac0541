"""Readers for labelled face sets: Pascal VOC, YOLO txt, WIDER FACE txt and COCO json.

Every reader returns ``Sample`` records with boxes in pixels and a class index per box
(``-1`` when the set says "face" but not whether it wears a mask). The same readers serve
``maskwatch eval`` and training. One unreadable label file or picture is left out and named
(in ``problems``, or as a warning), so that one bad file never stops the rest.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..core.errors import MaskwatchError
from ..core.face import LABELS
from ..core.geometry import containment_matrix, iou_matrix
from ..core.imageio import IMAGE_SUFFIXES

UNKNOWN = -1

IGNORE = -2  # a class mapped to "ignore": its boxes are left out

# Names that labelled sets use for our three classes (compared in lower case, spaces and hyphens as "_").
LABEL_ALIASES = {
    "mask": 0,
    "with_mask": 0,
    "masked": 0,
    "masked_face": 0,
    "face_mask": 0,
    "facemask": 0,
    "face_with_mask": 0,
    "mask_on": 0,
    "good": 0,
    "no_mask": 1,
    "without_mask": 1,
    "nomask": 1,
    "unmasked": 1,
    "unmasked_face": 1,
    "face_nomask": 1,
    "face_no_mask": 1,
    "face_without_mask": 1,
    "no_face_mask": 1,
    "bare": 1,
    "bad": 1,
    "incorrect": 2,
    "mask_weared_incorrect": 2,
    "mask_worn_incorrectly": 2,
    "mask_worn_incorrect": 2,
    "incorrect_mask": 2,
    "with_incorrect_mask": 2,
    "incorrectly_masked": 2,
    "improperly_masked": 2,
    "mask_incorrect": 2,
    "mask_chin": 2,
    "mask_mouth_chin": 2,
    "mask_nose_mouth": 0,
    "partial_mask": 2,
    "none": 2,
    "face": UNKNOWN,
    "head": UNKNOWN,
    "person_face": UNKNOWN,
}
CLASS_NAMES = {**{name: i for i, name in enumerate(LABELS)}, "face": UNKNOWN, "ignore": IGNORE}


def _key(name: str) -> str:
    return "_".join(name.strip().lower().replace("-", " ").split())


def parse_class_map(spec: str | None) -> dict[str, int]:
    """``--class-map NAME=CLASS,...`` (CLASS: mask, no_mask, incorrect, face or ignore) as a mapping."""
    out: dict[str, int] = {}
    for part in (spec or "").split(","):
        if not part.strip():
            continue
        name, sep, cls = part.partition("=")
        if not sep or not name.strip() or _key(cls) not in CLASS_NAMES:
            raise MaskwatchError(
                f"--class-map: {part.strip()!r}: give NAME=CLASS, CLASS one of {', '.join(CLASS_NAMES)}"
            )
        out[_key(name)] = CLASS_NAMES[_key(cls)]
    return out


def data_root(explicit: Path | None = None) -> Path | None:
    """The project's data folder: ``explicit`` (``--data``), else ``$MASKWATCH_DATA``, else ``../shared/data``
    beside the current folder or beside the source checkout; None when none of them exists."""
    if explicit is not None:
        return Path(explicit)
    env = os.environ.get("MASKWATCH_DATA")
    checkout = next((p for p in Path(__file__).resolve().parents if (p / "pyproject.toml").is_file()), None)
    beside = [checkout.parent / "shared" / "data"] if checkout else []
    for cand in ([Path(env)] if env else []) + [Path("../shared/data"), *beside]:
        if cand.is_dir():
            return cand
    return None


def label_index(name: str, class_map: dict[str, int] | None = None) -> int:
    """Our class index for a set's class name: ``class_map`` first (``parse_class_map``), then the aliases;
    ``IGNORE`` for a class mapped to ignore. An unknown name is an error that says how to map it."""
    key = _key(name)
    if class_map and key in class_map:
        return class_map[key]
    if key in LABEL_ALIASES:
        return LABEL_ALIASES[key]
    raise MaskwatchError(
        f"unknown class name {name!r}: expected one of {', '.join(LABELS)} (or a common alias); "
        f"map it with --class-map '{name}=mask' (or no_mask, incorrect, face, ignore)"
    )


@dataclass
class Sample:
    """One labelled picture. ``ignore`` marks boxes that neither count nor penalise."""

    image: Path
    boxes: np.ndarray  # (N, 4) float32 x1y1x2y2 pixels
    labels: np.ndarray  # (N,) int64, UNKNOWN for face-only
    ignore: np.ndarray = field(default=None)  # type: ignore[arg-type]  # (N,) bool; None: none ignored

    def __post_init__(self):
        self.boxes = np.asarray(self.boxes, dtype=np.float32).reshape(-1, 4)
        self.labels = np.asarray(self.labels, dtype=np.int64).reshape(-1)
        if self.ignore is None:
            self.ignore = np.zeros(len(self.boxes), dtype=bool)
        self.ignore = np.asarray(self.ignore, dtype=bool).reshape(-1)


def _read_split(split: Path | None) -> set[str] | None:
    if split is None:
        return None
    return {ln.strip() for ln in Path(split).read_text().splitlines() if ln.strip()}


def _in_split(path: Path, root: Path, names: set[str] | None) -> bool:
    if names is None:
        return True
    rel = path.relative_to(root).as_posix()
    return path.stem in names or path.name in names or rel in names or str(Path(rel).with_suffix("")) in names


def _left_out(problems: list[str] | None, path: Path, exc: Exception) -> None:
    """Record a file that could not be read (or warn when nobody collects them)."""
    msg = f"{path}: left out, cannot read it ({type(exc).__name__}: {exc})"
    if problems is None:
        warnings.warn(msg, stacklevel=3)
    else:
        problems.append(msg)


def read_voc(
    root: Path, split: Path | None = None, problems: list[str] | None = None, class_map: dict[str, int] | None = None
) -> list[Sample]:
    """A folder with ``annotations/*.xml`` (Pascal VOC) and ``images/`` (or the pictures beside the folder)."""
    root = Path(root)
    ann_dir = root / "annotations" if (root / "annotations").is_dir() else root / "Annotations"
    img_dir = root / "images" if (root / "images").is_dir() else root / "JPEGImages"
    if not img_dir.is_dir():  # the pictures in the set's own folder, their labels in annotations/
        img_dir = root
    names = _read_split(split)
    samples = []
    for xml in sorted(ann_dir.glob("*.xml")):
        if names is not None and xml.stem not in names:
            continue
        try:
            tree = ET.parse(xml).getroot()
            fname = tree.findtext("filename") or xml.stem
            img = _find_image(img_dir, fname, xml.stem)
            if img is None:
                continue
            boxes, labels, ignore = [], [], []
            for obj in tree.iter("object"):
                bb = obj.find("bndbox")
                if bb is None:
                    continue
                b = [float(bb.findtext(k, "0")) for k in ("xmin", "ymin", "xmax", "ymax")]
                if b[2] <= b[0] or b[3] <= b[1]:
                    continue
                cls = label_index(obj.findtext("name", "face"), class_map)
                if cls == IGNORE:
                    continue
                boxes.append(b)
                labels.append(cls)
                ignore.append(obj.findtext("difficult", "0").strip() == "1")
        except (ET.ParseError, ValueError, OverflowError, OSError) as exc:
            _left_out(problems, xml, exc)
            continue
        except MaskwatchError as exc:  # an unknown class name: the set needs a mapping, not one file left out
            raise MaskwatchError(f"{xml}: {exc}") from None
        samples.append(Sample(img, np.array(boxes), np.array(labels), np.array(ignore)))
    return samples


def _find_image(img_dir: Path, fname: str, stem: str) -> Path | None:
    cand = img_dir / fname
    if cand.is_file():
        return cand
    for suf in (".jpg", ".jpeg", ".png", ".JPG", ".PNG", ".bmp", ".webp"):
        cand = img_dir / (stem + suf)
        if cand.is_file():
            return cand
    return None


def read_yolo(
    root: Path, split: Path | None = None, problems: list[str] | None = None, class_map: dict[str, int] | None = None
) -> list[Sample]:
    """A folder with ``images/`` and ``labels/*.txt`` (class cx cy w h, normalised).

    Class names come from ``classes.txt`` (or ``data.yaml`` names); without them the
    classes are taken as mask, no_mask, incorrect.
    """
    root = Path(root)
    classes = _yolo_classes(root, class_map)
    names = _read_split(split)
    samples = []
    img_dir = root / "images"
    for img in sorted(p for p in img_dir.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES):
        if not _in_split(img, img_dir, names):
            continue
        rel = img.relative_to(img_dir).with_suffix(".txt")
        lab = root / "labels" / rel
        try:
            h, w = _image_size(img)
        except Exception as exc:  # Pillow raises several kinds on a file that is no picture
            _left_out(problems, img, exc)
            continue
        boxes, labels = [], []
        try:
            for ln in lab.read_text().splitlines() if lab.is_file() else []:
                parts = ln.split()
                if len(parts) < 5:
                    continue
                c, cx, cy, bw, bh = int(float(parts[0])), *map(float, parts[1:5])
                if classes.get(c, UNKNOWN) == IGNORE:
                    continue
                boxes.append([(cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h])
                labels.append(classes.get(c, UNKNOWN))
        except (ValueError, OverflowError, UnicodeDecodeError, OSError) as exc:
            _left_out(problems, lab, exc)
            continue
        samples.append(Sample(img, np.array(boxes), np.array(labels)))
    return samples


def _yolo_classes(root: Path, class_map: dict[str, int] | None = None) -> dict[int, int]:
    names: list[str] = []
    if (root / "classes.txt").is_file():
        names = [ln.strip() for ln in (root / "classes.txt").read_text().splitlines() if ln.strip()]
    elif (root / "data.yaml").is_file():
        names = _yaml_names(root / "data.yaml")
    if not names:
        names = list(LABELS)
    return {i: label_index(n, class_map) for i, n in enumerate(names)}


def _yaml_names(path: Path) -> list[str]:
    """The class names of a YOLO ``data.yaml``: ``names`` as a list (flow or block style) or as {index: name}."""
    import yaml

    try:
        doc = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError, OSError) as exc:
        raise MaskwatchError(f"{path}: cannot read it as YAML ({str(exc).splitlines()[0]})") from None
    names = doc.get("names") if isinstance(doc, dict) else None
    if isinstance(names, dict):
        try:
            return [str(names[k]) for k in sorted(names, key=int)]
        except (TypeError, ValueError):
            raise MaskwatchError(f"{path}: names must be a list or a mapping of class indexes to names") from None
    if names is None:
        return []
    if not isinstance(names, list):
        raise MaskwatchError(f"{path}: names must be a list or a mapping of class indexes to names")
    return [str(n) for n in names]


def _image_size(path: Path) -> tuple[int, int]:
    from PIL import Image

    with Image.open(path) as im:
        w, h = im.size
    return h, w


def read_wider(root: Path, split: Path | None = None, min_size: float = 0.0) -> list[Sample]:
    """WIDER FACE: ``wider_face_bbx_gt.txt`` (name, count, then x y w h blur expr illum invalid occl pose).

    Faces are face-only (class UNKNOWN); invalid faces and those smaller than ``min_size`` are
    marked ignore, as the WIDER evaluation does.
    """
    root = Path(root)
    gt = root / "wider_face_bbx_gt.txt"
    names = _read_split(split)
    try:
        return _parse_wider(root, gt.read_text().splitlines(), names, min_size)
    except (ValueError, IndexError) as exc:  # one file holds the whole set: nothing can be trusted after a bad line
        raise MaskwatchError(f"{gt}: not a WIDER FACE label file ({type(exc).__name__}: {exc})") from None


def _parse_wider(root: Path, lines: list[str], names: set[str] | None, min_size: float) -> list[Sample]:
    samples, i = [], 0
    while i < len(lines):
        name = lines[i].strip()
        n = int(lines[i + 1])
        rows = lines[i + 2 : i + 2 + max(n, 1)]
        i += 2 + max(n, 1)
        if names is not None and name not in names:
            continue
        boxes, ignore = [], []
        for r in rows[:n]:
            v = [float(t) for t in r.split()]
            x, y, bw, bh = v[:4]
            if bw <= 0 or bh <= 0:
                continue
            boxes.append([x, y, x + bw, y + bh])
            invalid = len(v) > 7 and v[7] == 1
            ignore.append(invalid or max(bw, bh) < min_size)
        samples.append(Sample(root / "images" / name, np.array(boxes), np.full(len(boxes), UNKNOWN), np.array(ignore)))
    return samples


def read_coco(json_path: Path, image_root: Path | None = None, class_map: dict[str, int] | None = None) -> list[Sample]:
    """COCO detection json: categories are mapped to our classes by name."""
    json_path = Path(json_path)
    try:
        return _parse_coco(json_path, json.loads(json_path.read_text()), image_root, class_map)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise MaskwatchError(f"{json_path}: not a COCO detection file ({type(exc).__name__}: {exc})") from None


def _parse_coco(
    json_path: Path, data: dict, image_root: Path | None, class_map: dict[str, int] | None = None
) -> list[Sample]:
    root = Path(image_root) if image_root else json_path.parent
    images = data.get("images") or []
    if images and not (root / images[0]["file_name"]).exists() and (root / "images").is_dir():
        root = root / "images"
    cats = {c["id"]: label_index(c["name"], class_map) for c in data.get("categories", [])}
    per_img: dict[int, list] = {im["id"]: [] for im in data.get("images", [])}
    for a in data.get("annotations", []):
        x, y, w, h = a["bbox"]
        if cats.get(a["category_id"], UNKNOWN) == IGNORE:
            continue
        per_img.setdefault(a["image_id"], []).append(
            ([x, y, x + w, y + h], cats.get(a["category_id"], UNKNOWN), bool(a.get("iscrowd", 0)))
        )
    samples = []
    for im in data.get("images", []):
        anns = per_img.get(im["id"], [])
        samples.append(
            Sample(
                root / im["file_name"],
                np.array([a[0] for a in anns]),
                np.array([a[1] for a in anns]),
                np.array([a[2] for a in anns]),
            )
        )
    return samples


def detect_format(root: Path) -> str:
    root = Path(root)
    if root.is_file() and root.suffix == ".json":
        return "coco"
    if (root / "wider_face_bbx_gt.txt").is_file():
        return "wider"
    if (root / "annotations").is_dir() and any((root / "annotations").glob("*.xml")) or (root / "Annotations").is_dir():
        return "voc"
    if (root / "labels").is_dir():
        return "yolo"
    if (root / "annotations").is_dir() and any((root / "annotations").glob("*.json")):
        return "coco"
    raise MaskwatchError(
        f"{root}: cannot tell the label format (expected annotations/*.xml, labels/*.txt, wider_face_bbx_gt.txt or a COCO .json)"
    )


def load_dataset(
    root: Path,
    split: Path | str | None = None,
    fmt: str = "auto",
    problems: list[str] | None = None,
    class_map: dict[str, int] | None = None,
) -> list[Sample]:
    """Read a labelled set in any supported format; ``split`` names a file listing images to keep.

    Files that cannot be read are left out; ``problems`` (when given) collects a line naming each.
    ``class_map``: the set's own class names -> our classes (``parse_class_map``), before the aliases.
    """
    root = Path(root)
    if not root.exists():
        raise MaskwatchError(f"{root}: no such data folder or file")
    if split is not None and not Path(split).is_file() and (root / str(split)).is_file():
        split = root / str(split)
    if split is not None and not Path(split).is_file():
        raise MaskwatchError(f"{split}: no such split file")
    split = Path(split) if split is not None else None
    fmt = detect_format(root) if fmt == "auto" else fmt
    if fmt == "voc":
        return read_voc(root, split, problems, class_map)
    if fmt == "yolo":
        return read_yolo(root, split, problems, class_map)
    if fmt == "wider":
        return read_wider(root, split)
    if fmt == "coco":
        js = root if root.is_file() else sorted((root / "annotations").glob("*.json"))[0]
        return read_coco(js, class_map=class_map)
    raise MaskwatchError(f"unknown format {fmt!r}: use voc, yolo, wider or coco")


# Sets without a split of their own get a fixed validation part, chosen by a hash of each picture's
# name (the same pictures on every machine and in every run, whatever else the folder holds): what
# benchmarks/accuracy.py reports and what training must leave out (``holdout(..., part="train")``).
HOLDOUT = {"macwinwin-facemask": 0.25, "webmask2020-facemask": 0.3}


def in_holdout(image: Path, fraction: float) -> bool:
    """Whether a picture lies in the held-out validation part of its set (see ``HOLDOUT``)."""
    digest = hashlib.sha1(Path(image).stem.encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "big") / 2**32 < fraction


def holdout(samples: list[Sample], fraction: float, part: str = "val") -> list[Sample]:
    """The held-out validation part (``part="val"``) or the rest (``"train"``) of a set's samples."""
    if part not in ("val", "train"):
        raise ValueError(f'part must be "val" or "train", got {part!r}')
    return [s for s in samples if in_holdout(s.image, fraction) == (part == "val")]


def with_unlabelled(sample: Sample, faces: np.ndarray, overlap: float = 0.1, inside: float = 0.5) -> Sample:
    """``sample`` with ``faces`` (N, 4+, pixels: another detector's sure faces, e.g. YuNet-n's) added as
    ignored truth where no labelled box is near: faces that the labels leave out then count neither
    way (a detection on one is neither true nor false), as issue 29's measure counts them. A face
    near a labelled box (IoU >= ``overlap``, or ``inside`` of either box's area within the other) is
    that labelled face, not an unlabelled one, and is not added."""
    faces = np.asarray(faces, np.float32)
    faces = faces.reshape(-1, faces.shape[-1])[:, :4] if faces.size else np.zeros((0, 4), np.float32)
    if len(faces) and len(sample.boxes):
        near = (
            (iou_matrix(faces, sample.boxes) >= overlap)
            | (containment_matrix(faces, sample.boxes) >= inside)
            | (containment_matrix(sample.boxes, faces).T >= inside)
        )
        faces = faces[~near.any(axis=1)]
    if not len(faces):
        return sample
    return Sample(
        sample.image,
        np.concatenate([sample.boxes, faces]),
        np.concatenate([sample.labels, np.full(len(faces), UNKNOWN)]),
        np.concatenate([sample.ignore, np.ones(len(faces), bool)]),
    )
