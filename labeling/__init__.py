"""The labeling app."""
