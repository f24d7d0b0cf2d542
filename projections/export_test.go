package projections

// SetReadChunk sets the number of events in a run of a parallel as-of read
// (readChunk) for a test, and returns the function that restores it.
func SetReadChunk(n int) (restore func()) {
	old := readChunk
	readChunk = n
	return func() { readChunk = old }
}
