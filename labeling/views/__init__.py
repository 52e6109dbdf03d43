"""HTML pages of labeling: the rater's pages (`rater`) and the project admin's (`project_admin`)."""
