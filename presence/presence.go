// Package presence maps a Teams presence (availability, activity,
// out-of-office) to the line state that a OneCloud extension shows on
// colleagues' phones. It holds pure functions only: no I/O, no clock.
package presence

// LineState is what a PBX extension shows to colleagues.
type LineState string

// The line states a PBX extension can show.
const (
	Busy         LineState = "busy"
	DoNotDisturb LineState = "dnd"
	Away         LineState = "away"
	Available    LineState = "available"
	Offline      LineState = "offline"
)

// Valid reports whether s is one of the known line states.
func (s LineState) Valid() bool {
	switch s {
	case Busy, DoNotDisturb, Away, Available, Offline:
		return true
	}
	return false
}

// Presence is a user's Teams presence as Graph reports it.
type Presence struct {
	Availability string `json:"availability"`
	Activity     string `json:"activity"`
	OutOfOffice  bool   `json:"outOfOffice,omitempty"`
}

// Outcome is the line state chosen for a presence and why.
type Outcome struct {
	State  LineState `json:"state"`
	Reason string    `json:"reason"`
}
