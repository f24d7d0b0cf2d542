package projections

// SetReadChunk sets the number of events in a run of a parallel as-of read
// (readChunk) for a test, and returns the function that restores it.
func SetReadChunk(n int) (restore func()) {
	old := readChunk
	readChunk = n
	return func() { readChunk = old }
}

// NewBoardLeaderboard is a leaderboard that keeps the boards of one metric
// for one period alone, as an as-of view of LeaderboardBoardScope does.
func NewBoardLeaderboard(metric, period string) Projector {
	return boardLeaderboard(metric, period)("")
}

// SetMaxBoardContribs sets how many contributions a board leaderboard holds
// in memory before it spills them (maxBoardContribs) for a test, and
// returns the function that restores it.
func SetMaxBoardContribs(n int32) (restore func()) {
	old := maxBoardContribs
	maxBoardContribs = n
	return func() { maxBoardContribs = old }
}

// SetContribWindow sets how many contributions a leaderboard batch holds
// before it writes them (contribWindow) for a test, and returns the
// function that restores it.
func SetContribWindow(n int) (restore func()) {
	old := contribWindow
	contribWindow = n
	return func() { contribWindow = old }
}
