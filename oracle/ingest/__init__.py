"""Chain in, database rows out: the listener, re-dispatch of stalled rows, the model mirror."""
