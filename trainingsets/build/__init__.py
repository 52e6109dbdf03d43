"""Building a version's files: records in, labels by policy, stable splits, Parquet row groups, a manifest.

`columns` fixes the version's schema before a row is read; `rows` streams the eligible records from
the database as Arrow tables; `labels` picks each record's label by the set's policy; `splits` gives
each record its split from a keyed hash; `writer` writes the split files, the lineage file and the
counts; `derived` turns the Parquet files into CSV and JSON lines. `files` ties them together.
"""
