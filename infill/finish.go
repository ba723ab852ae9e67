package infill

// ResolveMode returns m, or for Auto the mode the text around the cursor
// calls for (the same choice the in-process engine makes). Completers that
// produce their middle elsewhere use it to size the request and to finish the
// answer.
func ResolveMode(m Mode, prefix, suffix string) Mode {
	if m == Auto {
		return decideMode(prefix, suffix)
	}
	return m
}

// Finish applies the in-process engine's post-processing to a middle that
// came from elsewhere (a remote server): a single-line middle ends at its
// first line break, and text the suffix already holds is not repeated. Auto
// is treated as MultiLine; resolve it first with [ResolveMode].
func Finish(middle, suffix string, mode Mode) string {
	return finish(middle, suffix, mode == SingleLine)
}
