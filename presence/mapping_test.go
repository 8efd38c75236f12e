package presence

import (
	"encoding/json"
	"strings"
	"testing"
)

// expectDefault states, as plain rules written apart from the mapping
// table, what the default profile must show for a pair. The test compares
// the table with these rules for every one of the 9 x 15 pairs.
func expectDefault(availability, activity string, outOfOffice bool) LineState {
	base := availability
	switch availability {
	case "AvailableIdle":
		base = "Available"
	case "BusyIdle":
		base = "Busy"
	}

	// Gone or unknown users are never busy, whatever the activity says.
	switch base {
	case "Offline":
		return Offline
	case "PresenceUnknown":
		return Available
	}

	// Being in a call, a meeting or presenting is busy, even out of office.
	switch activity {
	case "InACall", "InAConferenceCall", "InAMeeting", "Presenting":
		return Busy
	case "UrgentInterruptionsOnly":
		return DoNotDisturb
	case "Offline":
		return Offline
	}

	var st LineState
	switch base {
	case "Available":
		st = Available
	case "Away", "BeRightBack":
		st = Away
	case "Busy":
		st = Busy
	case "DoNotDisturb":
		st = DoNotDisturb
	}
	if st == Busy && (outOfOffice || activity == "OutOfOffice") {
		return Away
	}
	return st
}

func TestValueLists(t *testing.T) {
	if len(Availabilities) != 9 {
		t.Errorf("Availabilities has %d values, Graph documents 9", len(Availabilities))
	}
	if len(Activities) != 15 {
		t.Errorf("Activities has %d values, Graph documents 15", len(Activities))
	}
}

func TestDefaultProfileAllPairs(t *testing.T) {
	p := DefaultProfile()
	pairs := 0
	for _, av := range Availabilities {
		for _, act := range Activities {
			for _, oof := range []bool{false, true} {
				in := Presence{Availability: av, Activity: act, OutOfOffice: oof}
				want := expectDefault(av, act, oof)
				got := p.Map(in)
				if got.State != want {
					t.Errorf("%s/%s oof=%v: got %s (%s), want %s",
						av, act, oof, got.State, got.Reason, want)
				}
				if !strings.Contains(got.Reason, av+"/"+act) {
					t.Errorf("%s/%s: reason %q does not name the pair", av, act, got.Reason)
				}
				if !got.State.Valid() {
					t.Errorf("%s/%s: %q is not a line state", av, act, got.State)
				}
				pairs++
			}
		}
	}
	if pairs != 9*15*2 {
		t.Fatalf("checked %d cases, want %d", pairs, 9*15*2)
	}

	// A zero profile is the default one.
	for _, av := range Availabilities {
		for _, act := range Activities {
			in := Presence{Availability: av, Activity: act}
			if a, b := (Profile{}).Map(in), p.Map(in); a != b {
				t.Errorf("%s/%s: zero profile %v, default %v", av, act, a, b)
			}
		}
	}
}

// TestCasesC3 checks the field cases by name.
func TestCasesC3(t *testing.T) {
	cases := []struct {
		name string
		in   Presence
		want LineState
	}{
		{"group call", Presence{Availability: "Busy", Activity: "InAConferenceCall"}, Busy},
		{"call", Presence{Availability: "Busy", Activity: "InACall"}, Busy},
		{"meeting", Presence{Availability: "Busy", Activity: "InAMeeting"}, Busy},
		{"presenting", Presence{Availability: "DoNotDisturb", Activity: "Presenting"}, Busy},
		{"available out of office", Presence{Availability: "Available", Activity: "OutOfOffice"},
			Available},
		{"busy out of office", Presence{Availability: "Busy", Activity: "OutOfOffice"}, Away},
		{"busy with out-of-office flag",
			Presence{Availability: "Busy", Activity: "Busy", OutOfOffice: true}, Away},
		{"call with out-of-office flag",
			Presence{Availability: "Busy", Activity: "InACall", OutOfOffice: true}, Busy},
		{"busy idle", Presence{Availability: "BusyIdle", Activity: "Busy"}, Busy},
		{"available idle", Presence{Availability: "AvailableIdle", Activity: "Available"},
			Available},
		{"unknown", Presence{Availability: "PresenceUnknown", Activity: "PresenceUnknown"},
			Available},
		{"unknown with stale call", Presence{Availability: "PresenceUnknown", Activity: "InACall"},
			Available},
		{"offline with stale meeting", Presence{Availability: "Offline", Activity: "InAMeeting"},
			Offline},
		{"appear offline", Presence{Availability: "Offline", Activity: "OffWork"}, Offline},
		{"focus time", Presence{Availability: "DoNotDisturb", Activity: "DoNotDisturb"},
			DoNotDisturb},
		{"be right back", Presence{Availability: "BeRightBack", Activity: "BeRightBack"}, Away},
		{"away", Presence{Availability: "Away", Activity: "Away"}, Away},
		{"lower case from Graph", Presence{Availability: "busy", Activity: "inacall"}, Busy},
	}
	p := DefaultProfile()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := p.Map(c.in)
			if got.State != c.want {
				t.Fatalf("%+v: got %s (%s), want %s", c.in, got.State, got.Reason, c.want)
			}
			if got.Reason == "" {
				t.Fatal("empty reason")
			}
		})
	}
}

func TestUnknownValuesAreNeverBusy(t *testing.T) {
	p := DefaultProfile()
	cases := []struct {
		in   Presence
		want LineState
		says string
	}{
		{Presence{Availability: "Focusing", Activity: "InACall"}, Available,
			`unknown availability value "Focusing"`},
		{Presence{Availability: "", Activity: ""}, Available, `unknown availability value ""`},
		{Presence{Availability: "Busy", Activity: "InAHuddle"}, Available,
			`unknown activity value "InAHuddle"`},
		{Presence{Availability: "Away", Activity: "InAHuddle"}, Away,
			`unknown activity value "InAHuddle"`},
	}
	for _, c := range cases {
		got := p.Map(c.in)
		if got.State != c.want {
			t.Errorf("%+v: got %s, want %s", c.in, got.State, c.want)
		}
		if !strings.Contains(got.Reason, c.says) {
			t.Errorf("%+v: reason %q does not say %q", c.in, got.Reason, c.says)
		}
	}
}

func TestOverrides(t *testing.T) {
	cases := []struct {
		name    string
		profile string
		in      Presence
		want    LineState
	}{
		{"meetings not busy", `{"activity": {"InAMeeting": "available"}}`,
			Presence{Availability: "Busy", Activity: "InAMeeting"}, Available},
		{"meetings not busy, calls still are", `{"activity": {"InAMeeting": "available"}}`,
			Presence{Availability: "Busy", Activity: "InACall"}, Busy},
		{"presenting is dnd", `{"activity": {"Presenting": "dnd"}}`,
			Presence{Availability: "DoNotDisturb", Activity: "Presenting"}, DoNotDisturb},
		{"presenting is dnd, meetings still busy", `{"activity": {"Presenting": "dnd"}}`,
			Presence{Availability: "Busy", Activity: "InAMeeting"}, Busy},
		{"away is available", `{"availability": {"Away": "available", "BeRightBack": "available"}}`,
			Presence{Availability: "Away", Activity: "Away"}, Available},
		{"be right back is available",
			`{"availability": {"Away": "available", "BeRightBack": "available"}}`,
			Presence{Availability: "BeRightBack", Activity: "BeRightBack"}, Available},
		{"meetings follow availability", `{"activity": {"InAMeeting": "from-availability"}}`,
			Presence{Availability: "DoNotDisturb", Activity: "InAMeeting"}, DoNotDisturb},
		{"an override of the base applies to its idle variant", `{"availability": {"Busy": "dnd"}}`,
			Presence{Availability: "BusyIdle", Activity: "Busy"}, DoNotDisturb},
		{"keys are matched case-insensitively", `{"activity": {"inameeting": "away"}}`,
			Presence{Availability: "Busy", Activity: "InAMeeting"}, Away},
		{"the rest keeps the default", `{"activity": {"InAMeeting": "available"}}`,
			Presence{Availability: "Offline", Activity: "OffWork"}, Offline},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := ParseProfile([]byte(c.profile))
			if err != nil {
				t.Fatalf("parse %s: %v", c.profile, err)
			}
			if got := p.Map(c.in); got.State != c.want {
				t.Errorf("%+v: got %s (%s), want %s", c.in, got.State, got.Reason, c.want)
			}
		})
	}

	oof, err := ParseProfile([]byte(`{"outOfOffice": "offline", "unknown": "offline"}`))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	if got := oof.Map(Presence{Availability: "Busy", Activity: "OutOfOffice"}); got.State != Offline {
		t.Errorf("out of office override: got %s", got.State)
	}
	if got := oof.Map(Presence{Availability: "Sleeping"}); got.State != Offline {
		t.Errorf("unknown override: got %s", got.State)
	}
}

func TestParseProfileRefusesBadInput(t *testing.T) {
	bad := map[string]string{
		"not json":                 `{"activity":`,
		"unknown field":            `{"activities": {}}`,
		"unknown activity":         `{"activity": {"InAMeting": "busy"}}`,
		"unknown availability":     `{"availability": {"Bussy": "busy"}}`,
		"unknown state":            `{"activity": {"InACall": "red"}}`,
		"offline busy":             `{"availability": {"Offline": "busy"}}`,
		"unknown busy":             `{"availability": {"PresenceUnknown": "busy"}}`,
		"out-of-office busy":       `{"activity": {"OutOfOffice": "busy"}}`,
		"out-of-office state busy": `{"outOfOffice": "busy"}`,
		"unknown value busy":       `{"unknown": "busy"}`,
		"from-availability avail":  `{"availability": {"Busy": "from-availability"}}`,
		"trailing data":            `{} {}`,
	}
	for name, in := range bad {
		if _, err := ParseProfile([]byte(in)); err == nil {
			t.Errorf("%s: %s was accepted", name, in)
		}
	}
}

func TestProfileJSONRoundTrip(t *testing.T) {
	empty, err := ParseProfile([]byte("  "))
	if err != nil {
		t.Fatalf("empty profile: %v", err)
	}
	data, err := json.Marshal(DefaultProfile())
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseProfile(data)
	if err != nil {
		t.Fatalf("parse marshalled default: %v", err)
	}
	for _, av := range Availabilities {
		for _, act := range Activities {
			in := Presence{Availability: av, Activity: act}
			if a, b, c := back.Map(in), DefaultProfile().Map(in), empty.Map(in); a != b || b != c {
				t.Errorf("%s/%s: round trip %v, default %v, empty %v", av, act, a, b, c)
			}
		}
	}
	if err := DefaultProfile().Validate(); err != nil {
		t.Errorf("default profile is invalid: %v", err)
	}
}
