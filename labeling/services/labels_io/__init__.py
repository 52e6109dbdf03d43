"""Labels in and out: a project's individual labels as CSV or Parquet, and a bulk import of labels from another tool.

Out (export): every label (undone ones too) with its item, record, rater and provenance, read in
chunks by annotation id, so memory stays bounded whatever the size of the project.

In (parsing, importing): lines of {external_id, source?, rater, value, created_at?}. Every line is
checked before anything is written, all errors are reported at once with their line, and the labels
are written in one transaction: all of them or none. The same line imported again is a no-op
("unchanged"); the same rater and record with another value is a located conflict. The items they
touch are then settled.
"""
from .export import iso, label_cell, labels_csv_pieces, labels_write_csv, labels_write_parquet
from .importing import labels_import
from .parsing import ImportLine, LabelsRejected, TooManyLabels, import_limit, labels_parse

__all__ = ["ImportLine", "LabelsRejected", "TooManyLabels", "import_limit", "iso", "label_cell", "labels_csv_pieces",
           "labels_import", "labels_parse", "labels_write_csv", "labels_write_parquet"]
