package activities

import (
	"slices"
	"strings"

	"github.com/nyaruka/phonenumbers"

	"github.com/setera/onesync/graph"
	"github.com/setera/onesync/pbx"
)

// How a link was matched, as stored in store.Link.MatchedBy.
const (
	MatchedByEmail = "email"
	MatchedByUPN   = "upn"
	MatchedByPhone = "phone"
)

// Pair is a Teams user matched to exactly one extension.
type Pair struct {
	User      graph.User
	Extension pbx.Extension
	By        string // MatchedByEmail, MatchedByUPN or MatchedByPhone
}

// Ambiguity is a Teams user that could not be linked because the match was
// not unique: the user matches several extensions, or the one extension it
// matches is matched by other users too.
type Ambiguity struct {
	User       graph.User
	Extensions []string // the extension numbers in question
}

// Matching is the outcome of Match.
type Matching struct {
	Pairs          []Pair
	UnmatchedUsers []graph.User    // enabled members without an extension
	UnmatchedExts  []pbx.Extension // extensions without a Teams user
	Ambiguous      []Ambiguity     // users not linked because of a tie
	Excluded       int             // guests and disabled accounts left out
}

// Match pairs a tenant's Teams users with an organisation's extensions.
//
// Only enabled members take part (graph.User.Member). A user is matched by
// mail or user principal name against the extension's email, ignoring
// case; a user without such a match is matched by phone: the business
// phones and the mobile, normalised to E.164 with region for national
// numbers, against the extension's phone. Nothing is guessed: a user that
// matches two extensions, or an extension that two users match on the same
// rule, is reported in Ambiguous and not linked. An address match beats a
// phone match for the same extension, because a shared switchboard number
// on many users must not hide the person who owns the extension.
//
// Match is a pure function: the same input gives the same output, in the
// order of users and extensions given.
func Match(users []graph.User, exts []pbx.Extension, region string) Matching {
	var m Matching

	byEmail := map[string][]int{}
	byPhone := map[string][]int{}
	for i, e := range exts {
		if k := emailKey(e.Email); k != "" {
			byEmail[k] = appendUnique(byEmail[k], i)
		}
		if k := phoneKey(e.Phone, region); k != "" {
			byPhone[k] = appendUnique(byPhone[k], i)
		}
	}

	// First pass: every member's candidates, by address, else by phone.
	type candidate struct {
		user  int
		exts  []int
		byOf  map[int]string // extension → how it matched (address rule)
		phone bool
	}
	var cands []candidate
	var members []graph.User
	for _, u := range users {
		if !u.Member() {
			m.Excluded++
			continue
		}
		ui := len(members)
		members = append(members, u)

		c := candidate{user: ui, byOf: map[int]string{}}
		for _, ei := range byEmail[emailKey(u.Mail)] {
			c.exts = appendUnique(c.exts, ei)
			c.byOf[ei] = MatchedByEmail
		}
		for _, ei := range byEmail[emailKey(u.UPN)] {
			if _, seen := c.byOf[ei]; !seen {
				c.byOf[ei] = MatchedByUPN
			}
			c.exts = appendUnique(c.exts, ei)
		}
		if len(c.exts) == 0 {
			for _, p := range userPhones(u) {
				for _, ei := range byPhone[phoneKey(p, region)] {
					c.exts = appendUnique(c.exts, ei)
					c.byOf[ei] = MatchedByPhone
				}
			}
			c.phone = len(c.exts) > 0
		}
		cands = append(cands, c)
	}

	// Second pass: who claims each extension, address matches first.
	addrClaims := map[int][]int{}
	phoneClaims := map[int][]int{}
	for ci, c := range cands {
		if len(c.exts) != 1 {
			continue
		}
		if c.phone {
			phoneClaims[c.exts[0]] = append(phoneClaims[c.exts[0]], ci)
		} else {
			addrClaims[c.exts[0]] = append(addrClaims[c.exts[0]], ci)
		}
	}

	linked := map[int]bool{}
	for _, c := range cands {
		u := members[c.user]
		switch {
		case len(c.exts) == 0:
			m.UnmatchedUsers = append(m.UnmatchedUsers, u)
		case len(c.exts) > 1:
			m.Ambiguous = append(m.Ambiguous, Ambiguity{User: u, Extensions: numbers(exts, c.exts)})
		default:
			ei := c.exts[0]
			claims := addrClaims[ei]
			if c.phone {
				if len(addrClaims[ei]) > 0 {
					// The extension's owner matched by address.
					m.UnmatchedUsers = append(m.UnmatchedUsers, u)
					continue
				}
				claims = phoneClaims[ei]
			}
			if len(claims) > 1 {
				m.Ambiguous = append(m.Ambiguous, Ambiguity{User: u, Extensions: numbers(exts, c.exts)})
				continue
			}
			linked[ei] = true
			m.Pairs = append(m.Pairs, Pair{User: u, Extension: exts[ei], By: c.byOf[ei]})
		}
	}

	for i, e := range exts {
		if !linked[i] {
			m.UnmatchedExts = append(m.UnmatchedExts, e)
		}
	}
	return m
}

// emailKey is an address in the form that addresses are compared in.
func emailKey(s string) string {
	return strings.ToLower(strings.TrimSpace(s))
}

// phoneKey is a phone number in E.164, or "" when it is not a possible
// number (an internal short number, free text).
func phoneKey(s, region string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return ""
	}
	n, err := phonenumbers.Parse(s, region)
	if err != nil || !phonenumbers.IsPossibleNumber(n) {
		return ""
	}
	return phonenumbers.Format(n, phonenumbers.E164)
}

func userPhones(u graph.User) []string {
	out := slices.Clone(u.BusinessPhones)
	if u.MobilePhone != "" {
		out = append(out, u.MobilePhone)
	}
	return out
}

func appendUnique(s []int, v int) []int {
	if slices.Contains(s, v) {
		return s
	}
	return append(s, v)
}

func numbers(exts []pbx.Extension, idx []int) []string {
	out := make([]string, 0, len(idx))
	for _, i := range idx {
		out = append(out, exts[i].Number)
	}
	return out
}
