CHANGED_HEADLINE = "git control files changed"
REFUSED_HEADLINE = "kimicode runs no git here"
