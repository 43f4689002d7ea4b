"""Operations tools: alert rules export, runbooks, incident drills and the web dashboard."""
