"""faces4d experiments: the realism report of the embedded dataset's versions."""
