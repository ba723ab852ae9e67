package tokenizer

// Byte-level BPE (GPT-2 and its descendants) never sees raw bytes: every byte
// is first written as a printable rune, so that the vocabulary and the merges
// can be stored as ordinary text. Printable Latin-1 bytes stand for themselves;
// the 68 others (controls, space, 0x7f-0xa0, 0xad) are shifted to U+0100 and
// up, in byte order. A space therefore reads "Ġ" (U+0120) and a newline "Ċ".

// byteRuneLimit bounds the runes the mapping uses: 256 + 68.
const byteRuneLimit = 256 + 68

var (
	// byteToRune[b] is the rune that stands for byte b.
	byteToRune [256]rune
	// runeToByte[r] is the byte rune r stands for, or -1.
	runeToByte [byteRuneLimit]int16
)

func init() {
	for i := range runeToByte {
		runeToByte[i] = -1
	}
	shifted := rune(256)
	for b := 0; b < 256; b++ {
		printable := ('!' <= b && b <= '~') || (0xa1 <= b && b <= 0xac) || (0xae <= b && b <= 0xff)
		r := rune(b)
		if !printable {
			r = shifted
			shifted++
		}
		byteToRune[b] = r
		runeToByte[r] = int16(b)
	}
}

// byteLevelDecode returns the bytes a vocabulary string stands for. Like
// Hugging Face's ByteLevel decoder, a string holding any rune outside the
// mapping is taken literally, as its own UTF-8 bytes.
func byteLevelDecode(token string) []byte {
	out := make([]byte, 0, len(token))
	for _, r := range token {
		if r < 0 || r >= byteRuneLimit || runeToByte[r] < 0 {
			return []byte(token)
		}
		out = append(out, byte(runeToByte[r]))
	}
	return out
}
