package pbx

// Combine makes one Connector from a directory and a publisher that come
// from different places, as in a SIP deployment: the extensions come from
// the list an admin uploaded, the line states go to the presence server.
func Combine(d Directory, p Publisher) Connector {
	return combined{d, p}
}

type combined struct {
	Directory
	Publisher
}
