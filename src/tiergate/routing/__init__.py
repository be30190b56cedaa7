"""Routes (what to classify, with which ladder, inside which error budget) and the engine."""
