package presence

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Availabilities lists the nine availability values Microsoft Graph reports,
// in the order Graph documents them.
var Availabilities = []string{
	"Available", "AvailableIdle", "Away", "BeRightBack", "Busy", "BusyIdle",
	"DoNotDisturb", "Offline", "PresenceUnknown",
}

// Activities lists the fifteen activity values Microsoft Graph reports, in
// the order Graph documents them.
var Activities = []string{
	"Available", "Away", "BeRightBack", "Busy", "DoNotDisturb", "InACall",
	"InAConferenceCall", "Inactive", "InAMeeting", "Offline", "OffWork",
	"OutOfOffice", "PresenceUnknown", "Presenting", "UrgentInterruptionsOnly",
}

// FromAvailability is the activity rule that lets the availability decide
// the line state. It is not a line state of its own and never reaches a PBX.
const FromAvailability LineState = "from-availability"

// Profile is one organisation's presence mapping: two lookup tables and the
// states used where Teams says the user is out of office or sends a value
// this package does not know. A profile decides a presence in this order:
//
//  1. An idle availability (AvailableIdle, BusyIdle) is read as its base.
//  2. Offline and PresenceUnknown availabilities decide on their own, so a
//     stale activity never leaves a line busy.
//  3. The activity's rule decides, unless it is FromAvailability.
//  4. Otherwise the availability's rule decides.
//  5. Out of office (the activity or the flag) never makes a line busy: a
//     busy that did not come from a call, meeting or presentation becomes
//     OutOfOffice. An unknown activity is treated alike with Unknown.
//
// A zero Profile behaves as DefaultProfile; a profile that lists only some
// values takes the rest from the default. Profile is JSON so the store can
// keep it per organisation.
type Profile struct {
	// Availability maps a Graph availability to a line state.
	Availability map[string]LineState `json:"availability,omitempty"`
	// Activity maps a Graph activity to a line state or FromAvailability.
	Activity map[string]LineState `json:"activity,omitempty"`
	// OutOfOffice replaces busy while the user is out of office.
	OutOfOffice LineState `json:"outOfOffice,omitempty"`
	// Unknown is shown for an availability value Graph sends that is not in
	// Availabilities, and replaces busy for an unknown activity value.
	Unknown LineState `json:"unknown,omitempty"`
}

// defaultAvailability is the default availability table.
var defaultAvailability = map[string]LineState{
	"Available":       Available,
	"AvailableIdle":   Available,
	"Away":            Away,
	"BeRightBack":     Away,
	"Busy":            Busy,
	"BusyIdle":        Busy,
	"DoNotDisturb":    DoNotDisturb,
	"Offline":         Offline,
	"PresenceUnknown": Available,
}

// defaultActivity is the default activity table: the activities that mean
// the user is engaged decide; the rest restate or refine the availability.
var defaultActivity = map[string]LineState{
	"Available":               FromAvailability,
	"Away":                    FromAvailability,
	"BeRightBack":             FromAvailability,
	"Busy":                    FromAvailability,
	"DoNotDisturb":            FromAvailability,
	"InACall":                 Busy,
	"InAConferenceCall":       Busy,
	"Inactive":                FromAvailability,
	"InAMeeting":              Busy,
	"Offline":                 Offline,
	"OffWork":                 FromAvailability,
	"OutOfOffice":             FromAvailability,
	"PresenceUnknown":         FromAvailability,
	"Presenting":              Busy,
	"UrgentInterruptionsOnly": DoNotDisturb,
}

// idleBase names the availability an idle availability stands for. The
// idle variants only say the user has not touched the device for a while.
var idleBase = map[string]string{
	"AvailableIdle": "Available",
	"BusyIdle":      "Busy",
}

// decisive holds the availabilities that decide whatever the activity says.
var decisive = map[string]bool{"Offline": true, "PresenceUnknown": true}

// neverBusyAvailability and neverBusyActivity hold the values that a profile
// must not map to busy: a line must not stay busy for a user who is gone.
var (
	neverBusyAvailability = []string{"Offline", "PresenceUnknown"}
	neverBusyActivity     = []string{"Offline", "OutOfOffice", "PresenceUnknown", "OffWork"}
)

// canonical finds the Graph spelling of a value case-insensitively.
var (
	canonicalAvailability = canonicalIndex(Availabilities)
	canonicalActivity     = canonicalIndex(Activities)
)

func canonicalIndex(values []string) map[string]string {
	m := make(map[string]string, len(values))
	for _, v := range values {
		m[strings.ToLower(v)] = v
	}
	return m
}

// DefaultProfile returns the mapping OneSync uses unless an organisation
// changes it: calls, conference calls, meetings and presenting are busy;
// do-not-disturb is dnd; away and be-right-back are away; offline is
// offline; unknown is available; out of office is never busy.
func DefaultProfile() Profile {
	p := Profile{
		Availability: make(map[string]LineState, len(defaultAvailability)),
		Activity:     make(map[string]LineState, len(defaultActivity)),
		OutOfOffice:  Away,
		Unknown:      Available,
	}
	for k, v := range defaultAvailability {
		p.Availability[k] = v
	}
	for k, v := range defaultActivity {
		p.Activity[k] = v
	}
	return p
}

// ParseProfile reads an organisation's profile from JSON. Values the JSON
// leaves out keep their default, so each of these is a complete profile:
//
//	{"activity": {"InAMeeting": "available"}}             meetings are not busy
//	{"activity": {"Presenting": "dnd"}}                   presenting is dnd
//	{"availability": {"Away": "available",
//	                  "BeRightBack": "available"}}        away shows available
//
// Empty input gives the default.
// Unknown keys, unknown Graph values, unknown line states and mappings that
// could leave a line busy for an absent user are refused.
func ParseProfile(data []byte) (Profile, error) {
	p := DefaultProfile()
	if len(bytes.TrimSpace(data)) == 0 {
		return p, nil
	}

	var in Profile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return Profile{}, fmt.Errorf("parse presence profile: %w", err)
	}
	if dec.More() {
		return Profile{}, errors.New("parse presence profile: trailing data after the JSON object")
	}

	for k, v := range in.Availability {
		name, ok := canonicalAvailability[strings.ToLower(k)]
		if !ok {
			return Profile{}, fmt.Errorf("parse presence profile: unknown availability %q", k)
		}
		p.Availability[name] = v
	}
	for k, v := range in.Activity {
		name, ok := canonicalActivity[strings.ToLower(k)]
		if !ok {
			return Profile{}, fmt.Errorf("parse presence profile: unknown activity %q", k)
		}
		p.Activity[name] = v
	}
	if in.OutOfOffice != "" {
		p.OutOfOffice = in.OutOfOffice
	}
	if in.Unknown != "" {
		p.Unknown = in.Unknown
	}

	if err := p.Validate(); err != nil {
		return Profile{}, fmt.Errorf("parse presence profile: %w", err)
	}
	return p, nil
}

// Validate reports every problem with a profile: a value that is not
// a Graph value, a state that is not a line state, or a mapping that would
// make an offline, unknown or out-of-office user busy. Missing entries are
// fine: they fall back to the default.
func (p Profile) Validate() error {
	var errs []error
	for _, k := range sortedKeys(p.Availability) {
		v := p.Availability[k]
		if canonicalAvailability[strings.ToLower(k)] != k {
			errs = append(errs, fmt.Errorf("availability %q is not a Graph availability", k))
		}
		if !v.Valid() {
			errs = append(errs, fmt.Errorf("availability %s: %q is not a line state", k, v))
		}
	}
	for _, k := range sortedKeys(p.Activity) {
		v := p.Activity[k]
		if canonicalActivity[strings.ToLower(k)] != k {
			errs = append(errs, fmt.Errorf("activity %q is not a Graph activity", k))
		}
		if !v.Valid() && v != FromAvailability {
			errs = append(errs, fmt.Errorf("activity %s: %q is neither a line state nor %q",
				k, v, FromAvailability))
		}
	}
	for _, k := range neverBusyAvailability {
		if p.Availability[k] == Busy {
			errs = append(errs, fmt.Errorf("availability %s must not be busy", k))
		}
	}
	for _, k := range neverBusyActivity {
		if p.Activity[k] == Busy {
			errs = append(errs, fmt.Errorf("activity %s must not be busy", k))
		}
	}
	for _, f := range []struct {
		name string
		v    LineState
	}{{"outOfOffice", p.OutOfOffice}, {"unknown", p.Unknown}} {
		if f.v == "" {
			continue
		}
		if !f.v.Valid() {
			errs = append(errs, fmt.Errorf("%s: %q is not a line state", f.name, f.v))
		} else if f.v == Busy {
			errs = append(errs, fmt.Errorf("%s must not be busy", f.name))
		}
	}
	return errors.Join(errs...)
}

// Map chooses the line state for a Teams presence and says why. It never
// fails: a value it does not know yields a state that is not busy and a
// reason that names the value.
func (p Profile) Map(in Presence) Outcome {
	pair := in.Availability + "/" + in.Activity

	avail, knownAvail := canonicalAvailability[strings.ToLower(in.Availability)]
	if !knownAvail {
		return Outcome{
			State:  p.unknown(),
			Reason: fmt.Sprintf("%s: unknown availability value %q", pair, in.Availability),
		}
	}
	why := ""
	if base, idle := idleBase[avail]; idle {
		why = avail + " read as " + base + "; "
		avail = base
	}
	availState := p.availability(avail)

	if decisive[avail] {
		if availState == Busy {
			availState = p.unknown() // only a hand-built, invalid profile gets here
		}
		return Outcome{State: availState,
			Reason: fmt.Sprintf("%s: %savailability %s is %s whatever the activity",
				pair, why, avail, availState)}
	}

	act, knownAct := canonicalActivity[strings.ToLower(in.Activity)]
	if !knownAct {
		state := availState
		if state == Busy {
			state = p.unknown()
		}
		return Outcome{State: state,
			Reason: fmt.Sprintf("%s: %sunknown activity value %q; availability %s gives %s",
				pair, why, in.Activity, avail, state)}
	}

	state, from := p.activity(act), "activity "+act
	fromActivity := state != FromAvailability
	if !fromActivity {
		state, from = availState, "availability "+avail
	}
	outOfOffice := in.OutOfOffice || act == "OutOfOffice"
	if outOfOffice && state == Busy && (!fromActivity || act == "OutOfOffice") {
		return Outcome{State: p.outOfOffice(),
			Reason: fmt.Sprintf("%s: %sout of office, so %s shows %s instead of busy",
				pair, why, from, p.outOfOffice())}
	}

	note := ""
	if outOfOffice {
		note = " (out of office)"
	}
	return Outcome{State: state,
		Reason: fmt.Sprintf("%s: %s%s is %s%s", pair, why, from, state, note)}
}

// availability looks a (canonical) availability up, falling back to the
// default table so a partial profile still maps every value.
func (p Profile) availability(name string) LineState {
	if v, ok := p.Availability[name]; ok && v.Valid() {
		return v
	}
	return defaultAvailability[name]
}

// activity looks a (canonical) activity up, falling back to the default.
func (p Profile) activity(name string) LineState {
	if v, ok := p.Activity[name]; ok && (v.Valid() || v == FromAvailability) {
		return v
	}
	return defaultActivity[name]
}

func (p Profile) outOfOffice() LineState {
	if p.OutOfOffice.Valid() && p.OutOfOffice != Busy {
		return p.OutOfOffice
	}
	return Away
}

func (p Profile) unknown() LineState {
	if p.Unknown.Valid() && p.Unknown != Busy {
		return p.Unknown
	}
	return Available
}

func sortedKeys(m map[string]LineState) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
