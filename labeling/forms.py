"""The feedback mapping rule form of the project admin's pages: signal, condition, resulting label."""
import json

from django import forms

from collection.models import FeedbackEvent

from .models import FeedbackRule, LabelingProject

NUMERIC_OPS = {FeedbackRule.Op.GT, FeedbackRule.Op.GTE, FeedbackRule.Op.LT, FeedbackRule.Op.LTE}


def _json_or_text(text: str):
    """`4` is a number, `true` a boolean, `"4"` or `up` a text: what the event's value is compared with."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _shown(value) -> str:
    """A stored threshold as the admin typed it (texts bare, unless they would read as another type)."""
    if value is None:
        return ""
    if isinstance(value, str) and not isinstance(_json_or_text(value), str):
        return json.dumps(value)
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return ", ".join(_shown(v) for v in value)
    return json.dumps(value)


class FeedbackRuleForm(forms.Form):
    """A rule's fields, with the label field shaped by the project's label kind."""

    name = forms.CharField(max_length=200, required=False, help_text="Optional, for the list.")
    signal = forms.CharField(max_length=100, help_text="rating, click, thumbs, correction or a source's own name.")
    op = forms.ChoiceField(label="Condition", choices=FeedbackRule.Op.choices, initial=FeedbackRule.Op.ANY)
    threshold = forms.CharField(
        required=False, max_length=500,
        help_text="What the event's value is compared with: 4, up, true; for 'one of', a comma-separated list.")
    use_event_value = forms.BooleanField(required=False, label="The label is the event's value (a correction)")
    enabled = forms.BooleanField(required=False, initial=True)
    position = forms.IntegerField(min_value=0, required=False,
                                  help_text="Rules are tried in this order; the first that matches wins.")

    def __init__(self, *args, project: LabelingProject, rule: FeedbackRule | None = None, **kwargs):
        if rule is not None and "initial" not in kwargs:
            kwargs["initial"] = {"name": rule.name, "signal": rule.signal, "op": rule.op,
                                 "threshold": _shown(rule.threshold), "use_event_value": rule.use_event_value,
                                 "enabled": rule.enabled, "position": rule.position, "label": rule.label}
        super().__init__(*args, **kwargs)
        self.project = project
        self.fields["label"] = self._label_field(project)
        self.order_fields(["name", "signal", "op", "threshold", "label", "use_event_value", "enabled", "position"])
        self.signals = sorted(set(FeedbackEvent.Signal.values) | set(
            project.feedback_rules.values_list("signal", flat=True)))

    @staticmethod
    def _label_field(project: LabelingProject) -> forms.Field:
        kind = project.label_kind
        help_text = "The label this rule gives (unless the label is the event's value)."
        if kind == LabelingProject.LabelKind.SINGLE:
            choices = [("", "—")] + [(c["value"], c.get("label") or c["value"]) for c in project.choices]
            return forms.ChoiceField(choices=choices, required=False, help_text=help_text)
        if kind == LabelingProject.LabelKind.MULTIPLE:
            return forms.MultipleChoiceField(choices=[(c["value"], c.get("label") or c["value"])
                                                      for c in project.choices],
                                             required=False, widget=forms.CheckboxSelectMultiple, help_text=help_text)
        if kind == LabelingProject.LabelKind.RATING:
            return forms.IntegerField(min_value=project.scale_min, max_value=project.scale_max, required=False,
                                      help_text=help_text)
        return forms.CharField(max_length=project.text_max_length, required=False, help_text=help_text)

    def clean_threshold(self):
        return self.cleaned_data["threshold"].strip()

    def clean(self):
        data = super().clean()
        op, text = data.get("op"), data.get("threshold", "")
        if op and op != FeedbackRule.Op.ANY:
            if text == "":
                self.add_error("threshold", "This condition compares the event's value with something: give it.")
            elif op == FeedbackRule.Op.IN:
                parsed = _json_or_text(text)
                data["threshold"] = parsed if isinstance(parsed, list) else [
                    _json_or_text(part.strip()) for part in text.split(",") if part.strip()]
            else:
                data["threshold"] = _json_or_text(text)
                if op in NUMERIC_OPS and (isinstance(data["threshold"], bool)
                                          or not isinstance(data["threshold"], (int, float))):
                    self.add_error("threshold", "A greater-or-less condition needs a number.")
        else:
            data["threshold"] = None
        label = data.get("label")
        if data.get("use_event_value"):
            data["label"] = None
        elif label in (None, "", []):
            self.add_error("label", "Choose the label this rule gives, or take the event's value.")
        return data

    def rule(self, *, instance: FeedbackRule | None = None) -> FeedbackRule:
        """An unsaved rule with the form's values (on a copy of `instance` when editing), for the preview."""
        data = self.cleaned_data
        rule = FeedbackRule(project=self.project) if instance is None else FeedbackRule(
            pk=instance.pk, project=self.project, created_by_id=instance.created_by_id, created_at=instance.created_at)
        rule.name, rule.signal, rule.op = data["name"], data["signal"].strip(), data["op"]
        rule.threshold, rule.label, rule.use_event_value = data["threshold"], data["label"], data["use_event_value"]
        rule.enabled = data["enabled"]
        rule.position = data["position"] if data.get("position") is not None else (
            instance.position if instance else self.project.feedback_rules.count())
        return rule
