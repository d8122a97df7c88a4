"""Projects and who works on them: settings, labels, memberships, guideline versions, API tokens."""
