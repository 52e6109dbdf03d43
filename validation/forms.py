"""The baseline editing form: a baseline's schema and thresholds as fields an admin can change.

The form is built from the baseline it edits (one row of fields per feature) and gives back the
engine's own Schema and Thresholds, so what the page previews and saves is exactly what the
validate step will enforce. Fields are named by the feature's position (`f3-min`), since feature
names may hold any character; errors name the feature.
"""
from django import forms

from .services.edits import baseline_digest, baseline_edit_build, baseline_edit_check
from .stats import Schema, Thresholds
from .stats.schema import SERVING, TRAINING
from .stats.thresholds import METRICS, feature_metrics

# The per-feature thresholds an admin is offered for each kind come from the engine (thresholds.feature_metrics):
# the drift metrics that decide by default and the missing rate. Other per-feature overrides (set in JSON, say)
# are kept as they are.


def _threshold_field(label: str, initial) -> forms.FloatField:
    return forms.FloatField(label=label, required=False, min_value=0, initial=initial,
                            widget=forms.NumberInput(attrs={"step": "any", "placeholder": "default"}))


class BaselineEditForm(forms.Form):
    digest = forms.CharField(widget=forms.HiddenInput)
    drift_share = forms.FloatField(min_value=0.01, max_value=1.0,
                                   label="Dataset drift at this share of drifted features")
    min_rows = forms.IntegerField(min_value=1, label="Below this many values a drift only warns")
    alpha = forms.FloatField(min_value=1e-9, max_value=0.5, label="Noise floor (chance of a false alarm)")

    def __init__(self, *args, baseline, **kwargs):
        super().__init__(*args, **kwargs)
        self.baseline = baseline
        self.schema = Schema.from_dict(baseline.schema)
        self.thresholds = Thresholds.from_dict(baseline.thresholds or {})
        th = self.thresholds
        self.fields["digest"].initial = baseline_digest(baseline)
        self.fields["drift_share"].initial = th.drift_share
        self.fields["min_rows"].initial = th.min_rows
        self.fields["alpha"].initial = th.alpha
        for metric, (_, definition) in METRICS.items():
            field = _threshold_field(metric, th.defaults.get(metric))
            field.help_text = definition
            field.widget.attrs["placeholder"] = "report only"
            self.fields[f"default-{metric}"] = field
        self.features = list(self.schema.features.items())
        for i, (name, fs) in enumerate(self.features):
            self.fields[f"f{i}-required"] = forms.BooleanField(required=False, initial=fs.required,
                                                               label=f"{name} required")
            for env in (TRAINING, SERVING):
                self.fields[f"f{i}-absent-{env}"] = forms.BooleanField(
                    required=False, initial=env in fs.not_in_environments, label=f"{name} absent in {env}")
            if fs.kind == "categorical":
                self.fields[f"f{i}-domain"] = forms.CharField(
                    required=False, initial="\n".join(fs.domain or []), label=f"{name} domain",
                    widget=forms.Textarea(attrs={"rows": 2, "placeholder": "any value"}))
            else:
                for bound in ("min", "max"):
                    self.fields[f"f{i}-{bound}"] = forms.FloatField(
                        required=False, initial=getattr(fs, bound), label=f"{name} {bound}",
                        widget=forms.NumberInput(attrs={"step": "any", "placeholder": "no limit"}))
            for metric in feature_metrics(fs.kind):
                self.fields[f"f{i}-{metric}"] = _threshold_field(
                    f"{name} {metric}", th.per_feature.get(name, {}).get(metric))

    def rows(self):
        """One entry per feature for the template: its name, kind and bound fields."""
        for i, (name, fs) in enumerate(self.features):
            fields = {key.split("-", 1)[1].replace("-", "_"): self[key] for key in self.fields
                      if key.startswith(f"f{i}-")}
            yield {"name": name, "kind": fs.kind, "fields": fields,
                   "metrics": [fields[m] for m in feature_metrics(fs.kind)]}

    def error_list(self) -> list[str]:
        """Every error as one line that names the setting (a feature's field by the feature's name)."""
        out = []
        for key, errors in self.errors.items():
            where = "" if key == "__all__" else self.fields[key].label or key
            out += [f"{where}: {e}" if where else e for e in errors]
        return out

    def default_fields(self):
        return [self[f"default-{metric}"] for metric in METRICS]

    def clean(self):
        data = super().clean()
        # The rules themselves are the service's (services.edits); the form maps what breaks them to its fields.
        fields = {name: f"f{i}" for i, (name, _) in enumerate(self.features)}
        for name, setting, message in baseline_edit_check(features=self._feature_edits(data)):
            self.add_error(f"{fields[name]}-{setting}", message)
        return data

    def _feature_edits(self, data: dict) -> dict[str, dict]:
        """Each feature's edit as the service takes it, from what of it is valid in `data`."""
        edits = {}
        for i, (name, fs) in enumerate(self.features):
            edit = {"required": data.get(f"f{i}-required", False),
                    "absent": [env for env in (TRAINING, SERVING) if data.get(f"f{i}-absent-{env}")],
                    "thresholds": {m: data.get(f"f{i}-{m}") for m in feature_metrics(fs.kind)}}
            if fs.kind == "categorical":
                edit["domain"] = [v.strip() for v in (data.get(f"f{i}-domain") or "").splitlines() if v.strip()]
            else:
                edit["min"], edit["max"] = data.get(f"f{i}-min"), data.get(f"f{i}-max")
            edits[name] = edit
        return edits

    def edited(self) -> tuple[Schema, Thresholds]:
        """The schema and thresholds the valid form describes (call after is_valid())."""
        data = self.cleaned_data
        return baseline_edit_build(baseline=self.baseline, drift_share=data["drift_share"], min_rows=data["min_rows"],
                                   alpha=data["alpha"], defaults={m: data[f"default-{m}"] for m in METRICS},
                                   features=self._feature_edits(data))
