"""Test data that the suite and the benches share: synthetic frames with known shifts (not part of any app)."""
