"""How a record and a project's label look on the rater's page: feature rows, the answer inputs, the history."""
import json
import re
from dataclasses import dataclass

from ..models import LabelingProject

# A value shown as a picture: an http(s) URL ending in an image type, or an inline data: image.
IMAGE_URL = re.compile(r"^(?:https?://\S+\.(?:png|jpe?g|gif|webp|avif|bmp|svg)(?:[?#]\S*)?"
                       r"|data:image/(?:png|jpeg|gif|webp);base64,[A-Za-z0-9+/=]+)$", re.IGNORECASE)
LONG_TEXT = 80


@dataclass(frozen=True)
class Feature:
    name: str
    kind: str  # image, text, long, number, missing, structured
    value: object


def feature_rows(features: dict | None) -> list[Feature]:
    """The record's features in their order, each with how to show it: images as <img>, long text wrapped,
    lists and objects as indented JSON, missing values said so."""
    rows = []
    for name, value in (features or {}).items():
        if value is None or value == "":
            rows.append(Feature(name, "missing", None))
        elif isinstance(value, bool):
            rows.append(Feature(name, "text", "yes" if value else "no"))
        elif isinstance(value, (int, float)):
            rows.append(Feature(name, "number", value))
        elif isinstance(value, str) and IMAGE_URL.match(value.strip()):
            rows.append(Feature(name, "image", value.strip()))
        elif isinstance(value, str):
            rows.append(Feature(name, "long" if len(value) > LONG_TEXT or "\n" in value else "text", value))
        else:
            rows.append(Feature(name, "structured", json.dumps(value, indent=2, ensure_ascii=False)))
    return rows


@dataclass(frozen=True)
class Option:
    value: str  # as posted
    label: str
    hotkey: str


def answer_options(project: LabelingProject) -> list[Option]:
    """The buttons of a choice or rating project, each with its key; a rating's keys are its digits."""
    if project.label_kind in (LabelingProject.LabelKind.SINGLE, LabelingProject.LabelKind.MULTIPLE):
        return [Option(str(c["value"]), str(c.get("label") or c["value"]), str(c.get("hotkey") or ""))
                for c in project.choices or []]
    if project.label_kind == LabelingProject.LabelKind.RATING:
        return [Option(str(v), str(v), str(v) if 0 <= v <= 9 else "")
                for v in range(project.scale_min, project.scale_max + 1)]
    return []


def posted_value(project: LabelingProject, post):
    """The label as the form posted it, in the shape the queue expects (the queue checks it)."""
    if project.label_kind == LabelingProject.LabelKind.MULTIPLE:
        return post.getlist("value")
    raw = post.get("value")
    if project.label_kind == LabelingProject.LabelKind.RATING and raw not in (None, ""):
        try:
            return int(raw)
        except ValueError:
            return raw
    return raw


def chosen_values(value) -> set[str]:
    """Which options to show as chosen for a stored value (after an undo, the rater's previous answer)."""
    if value is None:
        return set()
    if isinstance(value, list):
        return {str(v) for v in value}
    return {str(value)}


def label_text(project: LabelingProject, value) -> str:
    """A stored label as the rater reads it: choice labels, not values."""
    names = {str(c["value"]): str(c.get("label") or c["value"]) for c in project.choices or []}
    if isinstance(value, list):
        return ", ".join(names.get(str(v), str(v)) for v in value)
    if value is None:
        return "no label"
    return names.get(str(value), str(value))
