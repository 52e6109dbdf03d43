"""The training-set form of the pages: name, what feeds the set, the label policy and the split rule, written
as an admin types them (`train 0.8, test 0.2`); the services decide whether the rule makes sense."""
import re

from django import forms

from collection.timestamps import TimestampInvalid, timestamp_parse

from .models import GateOn, SplitKind, TrainingSet, Unlabeled

FORMATS = [("parquet", "Parquet"), ("csv", "CSV"), ("jsonl", "JSON Lines")]
SPLIT_FIELDS = ("split_kind", "split_fractions", "split_cutoffs", "split_feature")
# The services name a refusal's field as the API does; the form shows it on its own field.
FIELD_NAMES = {"fractions": "split_fractions", "cutoffs": "split_cutoffs", "feature": "split_feature",
               "kind": "split_kind", "split": "split_kind", "split_rule": "split_kind"}


PAIR = re.compile(r"^\s*([^\s=:]+)\s*(?:[=:]\s*|\s+|$)(.*)$")


def _pairs(text: str) -> list[list[str]]:
    """`train 0.8, test 0.2` (commas or new lines between splits; a space, `=` or `: ` inside) as pairs."""
    pairs = []
    for part in text.replace("\n", ",").split(","):
        if part.strip():
            match = PAIR.match(part)
            pairs.append([match.group(1), match.group(2).strip()] if match else [part.strip(), ""])
    return pairs


def fractions_text(fractions) -> str:
    return ", ".join(f"{name} {value:g}" if isinstance(value, (int, float)) else f"{name} {value}"
                     for name, value in fractions or [])


def cutoffs_text(cutoffs) -> str:
    return ", ".join(f"{name} {value}" if value else str(name) for name, value in cutoffs or [])


class TrainingSetForm(forms.ModelForm):
    """A set's fields; with `split_locked` (a version is kept) the split rule is shown but not editable, and with
    `editing` the name is left out."""

    split_fractions = forms.CharField(
        required=False, label="Split fractions",
        help_text="Random and group rules: each split's share, summing to 1, e.g. train 0.8, validation 0.1, test 0.1.")
    split_cutoffs = forms.CharField(
        required=False, label="Split cutoffs",
        help_text="Time rule: a record observed before a split's cutoff takes that split; the last has none, "
                  "e.g. train 2026-11-10, validation 2026-11-20, test.")
    formats = forms.MultipleChoiceField(choices=FORMATS, widget=forms.CheckboxSelectMultiple, initial=["parquet"],
                                        help_text="Files built per split (Parquet is always built).")

    class Meta:
        model = TrainingSet
        fields = ["name", "description", "sources", "projects", "reader_groups", "use_gold", "use_adjudicated",
                  "use_consensus", "min_confidence", "use_feedback", "use_batch_labels", "unlabeled", "split_kind",
                  "split_fractions", "split_cutoffs", "split_feature", "formats", "gate_on"]
        labels = {"use_gold": "Gold items, with their known answer", "use_adjudicated": "Adjudicated labels",
                  "use_consensus": "Consensus labels", "min_confidence": "Minimum consensus confidence",
                  "use_feedback": "Process-feedback labels", "use_batch_labels": "Labels sent with the batch",
                  "unlabeled": "A record without an acceptable label", "split_kind": "Split rule",
                  "split_feature": "Group feature", "gate_on": "Hold a version for review on",
                  "reader_groups": "Readers"}
        widgets = {"description": forms.Textarea(attrs={"rows": 2}),
                   "sources": forms.CheckboxSelectMultiple, "projects": forms.CheckboxSelectMultiple,
                   "reader_groups": forms.CheckboxSelectMultiple,
                   "min_confidence": forms.NumberInput(attrs={"step": "0.01", "min": "0", "max": "1"})}

    def __init__(self, *args, split_locked: bool = False, editing: bool = False, **kwargs):
        instance = kwargs.get("instance")
        if instance is not None and instance.pk and "initial" not in kwargs:
            kwargs["initial"] = {"split_fractions": fractions_text(instance.split_fractions),
                                 "split_cutoffs": cutoffs_text(instance.split_cutoffs),
                                 "formats": list(instance.formats)}
        super().__init__(*args, **kwargs)
        if instance is None or not instance.pk:
            self.fields["split_fractions"].initial = fractions_text(TrainingSet().split_fractions)
        self.split_locked = split_locked
        if split_locked:
            for name in SPLIT_FIELDS:
                self.fields[name].disabled = True
                self.fields[name].help_text = ""  # the fieldset says why, once
        for name in ("use_feedback", "use_batch_labels"):
            self.fields[name].help_text = ""  # the label says it all
        self.fields["unlabeled"].choices = Unlabeled.choices
        self.fields["split_kind"].choices = SplitKind.choices
        self.fields["gate_on"].choices = GateOn.choices
        if editing:
            del self.fields["name"]  # it names the set's folder and API URLs: fixed once made

    def _post_clean(self):
        """The services validate and save; the model's own checks would only repeat them in other words."""

    def clean_split_fractions(self):
        if self.split_locked:
            return self.instance.split_fractions
        pairs = []
        for name, value in _pairs(self.cleaned_data["split_fractions"]):
            try:
                pairs.append([name, float(value)])
            except ValueError:
                raise forms.ValidationError(f"{name}: {value or 'no fraction'} is not a number.")
        return pairs

    def clean_split_cutoffs(self):
        if self.split_locked:
            return self.instance.split_cutoffs
        pairs = []
        for name, value in _pairs(self.cleaned_data["split_cutoffs"]):
            if value:
                try:
                    timestamp_parse(value)
                except TimestampInvalid as exc:
                    raise forms.ValidationError(f"{name}: {value} {exc} (YYYY-MM-DD[THH:MM]).") from None
            pairs.append([name, value or None])
        return pairs

    def clean_formats(self):
        chosen = self.cleaned_data["formats"]
        return [name for name, _ in FORMATS if name == "parquet" or name in chosen]

    def clean(self):
        data = super().clean()
        kind = data.get("split_kind")
        if not self.split_locked and kind:
            needed = "split_cutoffs" if kind == SplitKind.TIME else "split_fractions"
            if needed in data and not data[needed]:
                self.add_error(needed, "The split rule needs its splits: " + (
                    "each split with its cutoff, the last without." if kind == SplitKind.TIME
                    else "each split with its fraction."))
        return data

    def service_fields(self) -> dict:
        """What the services take: every field, the split rule's only when it may change."""
        data = dict(self.cleaned_data)
        if self.split_locked:
            for name in SPLIT_FIELDS:
                data.pop(name, None)
        # A rule uses fractions or cutoffs, not both: the other one, left empty, keeps what it was.
        for name in ("split_fractions", "split_cutoffs"):
            if name in data and not data[name]:
                del data[name]
        return data

    def add_service_error(self, exc) -> None:
        """A service's refusal, shown on the field it names (else above the form)."""
        field = FIELD_NAMES.get(exc.field, exc.field)
        self.add_error(field if field in self.fields else None, str(exc))
