package presence

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// randomProfile draws a profile that Validate accepts: every availability
// and activity mapped to a random line state (activities also to
// FromAvailability), then the values that may not be busy moved off busy.
func randomProfile(r *rand.Rand) Profile {
	states := []LineState{Busy, DoNotDisturb, Away, Available, Offline}
	pick := func() LineState { return states[r.IntN(len(states))] }
	notBusy := func() LineState {
		for {
			if s := pick(); s != Busy {
				return s
			}
		}
	}

	p := Profile{Availability: map[string]LineState{}, Activity: map[string]LineState{},
		OutOfOffice: notBusy(), Unknown: notBusy()}
	for _, a := range Availabilities {
		if r.IntN(4) > 0 { // some values are left to the default
			p.Availability[a] = pick()
		}
	}
	for _, a := range Activities {
		if r.IntN(4) > 0 {
			if r.IntN(3) == 0 {
				p.Activity[a] = FromAvailability
			} else {
				p.Activity[a] = pick()
			}
		}
	}
	for _, a := range neverBusyAvailability {
		if p.Availability[a] == Busy {
			p.Availability[a] = notBusy()
		}
	}
	for _, a := range neverBusyActivity {
		if p.Activity[a] == Busy {
			p.Activity[a] = notBusy()
		}
	}
	return p
}

// C3 for every organisation, not only the default: over hundreds of valid
// per-organisation profiles and every pair with and without the
// out-of-office flag, unknown and offline users are never busy, out of
// office never makes a line busy, and an idle availability maps exactly as
// its base.
func TestCasesC3RulesHoldForEveryValidProfile(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 2026))
	for n := 0; n < 400; n++ {
		p := randomProfile(r)
		if err := p.Validate(); err != nil {
			t.Fatalf("profile %d is invalid, fix the generator: %v", n, err)
		}
		for _, act := range Activities {
			for _, oof := range []bool{false, true} {
				for _, av := range []string{"PresenceUnknown", "Offline"} {
					if got := p.Map(Presence{av, act, oof}); got.State == Busy {
						t.Fatalf("profile %+v: %s/%s oof=%v is busy (%s)", p, av, act, oof,
							got.Reason)
					}
				}
				for idle, base := range idleBase {
					a, b := p.Map(Presence{idle, act, oof}), p.Map(Presence{base, act, oof})
					if a.State != b.State {
						t.Fatalf("profile %+v: %s/%s is %s but %s/%s is %s", p, idle, act,
							a.State, base, act, b.State)
					}
				}
			}
			for _, av := range Availabilities {
				got := p.Map(Presence{Availability: av, Activity: "OutOfOffice"})
				if got.State == Busy {
					t.Fatalf("profile %+v: %s/OutOfOffice is busy (%s)", p, av, got.Reason)
				}
				// The flag alone never turns a line busy that was not.
				without := p.Map(Presence{Availability: av, Activity: act})
				with := p.Map(Presence{Availability: av, Activity: act, OutOfOffice: true})
				if with.State == Busy && without.State != Busy {
					t.Fatalf("profile %+v: out of office made %s/%s busy", p, av, act)
				}
			}
		}
		for _, in := range []Presence{{"Busy", "InAHuddle", false}, {"Focusing", "InACall", false},
			{"", "", false}, {"BusyIdle", "Something", true}} {
			if got := p.Map(in); got.State == Busy {
				t.Fatalf("profile %+v: unknown value %+v is busy (%s)", p, in, got.Reason)
			}
		}
	}
}

// C3 for the default profile in every spelling Graph might use: a group
// call and presenting are busy whatever the case of the letters, with any
// availability that is not gone, idle or not.
func TestCasesC3GroupCallAndPresentingInEverySpelling(t *testing.T) {
	p := DefaultProfile()
	for _, act := range []string{"InAConferenceCall", "Presenting", "InACall", "InAMeeting"} {
		for _, av := range []string{"Busy", "BusyIdle", "DoNotDisturb", "Available",
			"AvailableIdle", "Away", "BeRightBack"} {
			for _, spell := range []func(string) string{
				func(s string) string { return s }, strings.ToLower, strings.ToUpper} {
				in := Presence{Availability: spell(av), Activity: spell(act)}
				if got := p.Map(in); got.State != Busy {
					t.Errorf("%+v: %s (%s), want busy", in, got.State, got.Reason)
				}
				in.OutOfOffice = true
				if got := p.Map(in); got.State != Busy {
					t.Errorf("%+v: %s (%s), want busy: a call is a call out of office too",
						in, got.State, got.Reason)
				}
			}
		}
	}
	for _, av := range Availabilities {
		for _, oof := range []bool{false, true} {
			in := Presence{Availability: av, Activity: "OutOfOffice", OutOfOffice: oof}
			if got := p.Map(in); got.State == Busy {
				t.Errorf("%+v is busy (%s)", in, got.Reason)
			}
		}
	}
}
