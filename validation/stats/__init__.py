"""Sieve's validation statistics: mergeable profiles, schema inference, drift and shift checks."""

from .compare import compare
from .profile import Profile, iter_parquet, profile_chunks, profile_frame, profile_parquet
from .report import Anomaly, MetricValue, Report, Shift
from .schema import FeatureSchema, Schema, infer_schema
from .spec import FeatureSpec, ProfileSpec, spec_from_frame
from .thresholds import METRICS, Thresholds

__all__ = [
    "Anomaly",
    "FeatureSchema",
    "FeatureSpec",
    "METRICS",
    "MetricValue",
    "Profile",
    "ProfileSpec",
    "Report",
    "Schema",
    "Shift",
    "Thresholds",
    "compare",
    "infer_schema",
    "iter_parquet",
    "profile_chunks",
    "profile_frame",
    "profile_parquet",
    "spec_from_frame",
]
