"""``celeriac demo``: two workers on the embedded broker, and the classic scenarios."""
