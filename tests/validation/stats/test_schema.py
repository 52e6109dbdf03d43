"""Schema inference and its JSON form."""

import numpy as np
import pandas as pd

from validation.stats import Schema, infer_schema, profile_frame, spec_from_frame

FRAME = pd.DataFrame(
    {
        "age": [30.0, 41.0, np.nan, 25.0],
        "city": ["Oslo", "Lima", "Oslo", "Pune"],
        "label": ["yes", "no", "no", "yes"],
    }
)


def test_inferred_schema_has_types_presence_domain_range_and_label_environment():
    schema = infer_schema(profile_frame(FRAME, label="label"))
    age, city, label = (schema.features[n] for n in ("age", "city", "label"))
    assert (age.kind, age.required, age.min, age.max) == ("numeric", False, 25.0, 41.0)
    assert (city.kind, city.required, sorted(city.domain)) == ("categorical", True, ["Lima", "Oslo", "Pune"])
    assert label.not_in_environments == ["serving"]
    assert schema.expected("serving") == ["age", "city"]
    assert schema.expected("training") == ["age", "city", "label"]


def test_domain_stays_open_when_the_top_k_did_not_see_every_value():
    profile = profile_frame(FRAME, spec=spec_from_frame(FRAME, top_k=2))
    assert infer_schema(profile).features["city"].domain is None


def test_domain_stays_open_above_the_maximum_domain_size():
    assert infer_schema(profile_frame(FRAME), max_domain_size=2).features["city"].domain is None


def test_an_edited_schema_round_trips_through_json():
    schema = infer_schema(profile_frame(FRAME, label="label"))
    schema.features["city"].domain.append("Quito")
    schema.features["age"].max = 120.0
    assert Schema.from_json(schema.to_json()) == schema
