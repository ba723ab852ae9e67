package infill

import "strings"

// holeCanvases lays out the canvases of a holes request. Each hole first
// gets the canvas a request for it alone would get (the other holes empty);
// neighbouring holes where either one's context window reaches the other
// are then merged into one canvas, so that each sees what is being written
// in the other. A group too long for one context keeps its holes apart.
func (e *Engine) holeCanvases(req HolesRequest) ([]*canvas, error) {
	parts := req.Parts
	holes := len(parts) - 1
	lens, single := make([]int, holes), make([]bool, holes)
	for i := range holes {
		single[i] = decideMode(parts[i], parts[i+1]) == SingleLine
		lens[i] = e.spanLen(single[i], req.MaxTokens)
	}
	alone := make([]*canvas, holes)
	for i := range holes {
		before, after := strings.Join(parts[:i+1], ""), strings.Join(parts[i+1:], "")
		c, err := e.canvas([]string{before, after}, lens[i:i+1], single[i:i+1])
		if err != nil {
			return nil, err
		}
		alone[i] = c
	}
	var cs []*canvas
	for first := 0; first < holes; {
		last := first
		for last+1 < holes && e.reaches(alone[last], alone[last+1], parts[last+1]) {
			last++
		}
		if first == last {
			cs = append(cs, alone[first])
			first++
			continue
		}
		group := []string{strings.Join(parts[:first+1], "")}
		group = append(group, parts[first+1:last+1]...)
		group = append(group, strings.Join(parts[last+1:], ""))
		c, err := e.canvas(group, lens[first:last+1], single[first:last+1])
		if err != nil {
			cs = append(cs, alone[first:last+1]...)
		} else {
			cs = append(cs, c)
		}
		first = last + 1
	}
	return cs, nil
}

// reaches says whether two neighbouring holes, alone in canvases a and b
// with the text gap between them, see each other: a's text after the hole
// or b's text before it covers the gap. The windows are cut from at most
// 8 bytes a token (see head and tail), so a longer gap is out of reach.
func (e *Engine) reaches(a, b *canvas, gap string) bool {
	if len(gap) > 8*e.opts.ContextTokens {
		return false
	}
	n := len(e.tok.EncodeOrdinary(gap))
	return a.usedAfter >= n || b.usedBefore >= n
}
