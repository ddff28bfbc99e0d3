"""Development tools: the local stack, its process supervisors, the request tool, crash points."""
