"""Training-set pages: the sets a user may read, a set's page (policy, versions, publish), a version's page
(manifest, gate report, diff, downloads, lineage). Staff do everything, an owner publishes, readers read."""
