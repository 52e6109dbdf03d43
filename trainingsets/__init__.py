"""The trainingsets app."""
