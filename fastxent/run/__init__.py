"""A scoring run: planned (:mod:`.plan`), streamed one pass per batch (:mod:`.loop`), finished
into a :class:`~fastxent.state.Score` (:mod:`.finish`)."""
