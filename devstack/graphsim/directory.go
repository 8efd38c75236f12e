package graphsim

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/setera/onesync/graph"
	"github.com/setera/onesync/presence"
)

// DemoTenantID is the fixed tenant id of the demo tenant that `onesync dev`
// creates, so that the OneCloud simulator can seed matching extensions.
const DemoTenantID = "5d1e6f3a-9b2c-4e7d-8a41-0c3b9f2e7d15"

// DemoDomain is the demo tenant's domain, on the reserved .example TLD.
const DemoDomain = "demo-oy.example"

// DemoAdminEmail is the demo tenant's admin account, which signs in on the
// consent page with the password from AdminPassword.
const DemoAdminEmail = "admin@" + DemoDomain

// demoEntry is one hand-written demo user: the directory fields plus what
// only the simulator knows.
type demoEntry struct {
	user     graph.User
	jobTitle string
	base     presence.Presence
}

// demoEntries are the demo tenant's users: twelve enabled, licensed
// members, a guest, a disabled account and the admin. The OneCloud demo
// organisation (devstack/onecloudsim) gives ten of the members an
// extension: nine by mail, Aada Koskinen by her mobile number alone.
// Lilja Lehtonen, Eino Lehtinen and the admin have none, and neither have
// the guest and the disabled account, who are never imported.
func demoEntries() []demoEntry {
	member := func(id, name, mail, upn, business, mobile, job string) demoEntry {
		var phones []string
		if business != "" {
			phones = []string{business}
		}
		return demoEntry{
			user: graph.User{ID: id, DisplayName: name, Mail: mail, UPN: upn,
				BusinessPhones: phones, MobilePhone: mobile, AccountEnabled: true,
				UserType: "Member"},
			jobTitle: job,
			base:     presence.Presence{Availability: "Available", Activity: "Available"},
		}
	}
	const d = "@" + DemoDomain
	entries := []demoEntry{
		member("0a6f1c2e-3b4d-4e5f-8a9b-1c2d3e4f5a01", "Aino Virtanen", "aino.virtanen"+d,
			"aino.virtanen"+d, "+358 9 4251 1001", "+358 40 123 4501", "Toimitusjohtaja"),
		member("0a6f1c2e-3b4d-4e5f-8a9b-1c2d3e4f5a02", "Eero Korhonen", "eero.korhonen"+d,
			"eero.korhonen"+d, "+358 9 4251 1002", "+358 40 123 4502", "Myyntipäällikkö"),
		member("0a6f1c2e-3b4d-4e5f-8a9b-1c2d3e4f5a03", "Helmi Mäkinen", "helmi.makinen"+d,
			"helmi.makinen"+d, "09 4251 1003", "040 123 4503", "Asiakaspalvelu"),
		member("0a6f1c2e-3b4d-4e5f-8a9b-1c2d3e4f5a04", "Onni Nieminen", "onni.nieminen"+d,
			"onni.nieminen"+d, "+358 9 4251 1004", "", "Asiakaspalvelu"),
		member("0a6f1c2e-3b4d-4e5f-8a9b-1c2d3e4f5a05", "Venla Mäkelä", "venla.makela"+d,
			"venla.makela"+d, "", "+358 50 765 4305", "Kirjanpitäjä"),
		member("0a6f1c2e-3b4d-4e5f-8a9b-1c2d3e4f5a06", "Leo Hämäläinen", "leo.hamalainen"+d,
			"leo.hamalainen"+d, "+358 9 4251 1006", "+358 44 555 0106", "Varastopäällikkö"),
		member("0a6f1c2e-3b4d-4e5f-8a9b-1c2d3e4f5a07", "Sofia Laine", "sofia.laine"+d,
			"sofia.laine"+d, "", "045 678 9107", "Myyjä"),
		member("0a6f1c2e-3b4d-4e5f-8a9b-1c2d3e4f5a08", "Elias Heikkinen", "elias.heikkinen"+d,
			"elias.heikkinen"+d, "+358 9 4251 1008", "+358 40 987 6108", "IT-tuki"),
		member("0a6f1c2e-3b4d-4e5f-8a9b-1c2d3e4f5a09", "Väinö Järvinen", "vaino.jarvinen"+d,
			"vaino.jarvinen"+d, "+358 9 4251 1009", "", "Markkinointi"),
		member("0a6f1c2e-3b4d-4e5f-8a9b-1c2d3e4f5a10", "Aada Koskinen", "aada.koskinen"+d,
			"aada.koskinen"+d, "", "040 123 4510", "Huolto"),
		member("0a6f1c2e-3b4d-4e5f-8a9b-1c2d3e4f5a14", "Lilja Lehtonen", "lilja.lehtonen"+d,
			"lilja.lehtonen"+d, "+358 9 4251 1014", "", "Talous"),
		member("0a6f1c2e-3b4d-4e5f-8a9b-1c2d3e4f5a15", "Eino Lehtinen", "eino.lehtinen"+d,
			"eino.lehtinen"+d, "", "+358 50 321 7715", "Kuljetus"),
		{
			user: graph.User{ID: "0a6f1c2e-3b4d-4e5f-8a9b-1c2d3e4f5a11",
				DisplayName: "Olli Partner (Kumppani Oy)", Mail: "olli.partner@kumppani.example",
				UPN:            "olli.partner_kumppani.example#EXT#" + d,
				AccountEnabled: true, UserType: "Guest"},
			base: presence.Presence{Availability: "PresenceUnknown", Activity: "PresenceUnknown"},
		},
		{
			user: graph.User{ID: "0a6f1c2e-3b4d-4e5f-8a9b-1c2d3e4f5a12",
				DisplayName: "Kari Entinen", Mail: "kari.entinen" + d, UPN: "kari.entinen" + d,
				BusinessPhones: []string{"+358 9 4251 1012"}, AccountEnabled: false,
				UserType: "Member"},
			jobTitle: "Entinen työntekijä",
			base:     presence.Presence{Availability: "Offline", Activity: "Offline"},
		},
		{
			user: graph.User{ID: "0a6f1c2e-3b4d-4e5f-8a9b-1c2d3e4f5a13",
				DisplayName: "Demo Oy Admin", Mail: DemoAdminEmail, UPN: DemoAdminEmail,
				AccountEnabled: true, UserType: "Member"},
			jobTitle: "Järjestelmänvalvoja",
			base:     presence.Presence{Availability: "Available", Activity: "Available"},
		},
	}
	return entries
}

// DemoUsers returns the demo tenant's directory, the same on every call, so
// that the OneCloud simulator's demo extensions can be checked against it.
func DemoUsers() []graph.User {
	entries := demoEntries()
	out := make([]graph.User, len(entries))
	for i, e := range entries {
		out[i] = e.user
		out[i].BusinessPhones = append([]string(nil), e.user.BusinessPhones...)
	}
	return out
}

// DemoTenant creates the demo tenant (once; later calls return it) with a
// generated admin password. It is not consented: dev's journey grants
// consent through the consent page.
func (s *Sim) DemoTenant() TenantInfo {
	if t := s.tenant(DemoTenantID); t != nil {
		return t.info()
	}
	t := &tenant{
		id: DemoTenantID, name: "Demo Oy", domain: DemoDomain, adminEmail: DemoAdminEmail,
		adminPassword: generatePassword(), spID: "7c0b5e61-2d4f-4a8e-9f3b-6e1d2c4b8a70",
		app: AppPresent, roles: append([]string(nil), s.opts.Roles...),
		byID: make(map[string]*user),
	}
	now := time.Now()
	for _, e := range demoEntries() {
		given, sur, _ := strings.Cut(e.user.DisplayName, " ")
		u := &user{User: e.user, givenName: given, surname: sur, jobTitle: e.jobTitle,
			licensed: e.user.UserType == "Member" && e.user.AccountEnabled,
			base:     e.base, changedAt: now}
		t.appendUser(u)
	}
	s.addTenant(t)
	return t.info()
}

// AddTenant generates a tenant of n users from seed (combined with the
// simulator's seed): the same seeds give the same tenant id, domain and
// directory. The tenant has not consented yet; see Consent.
func (s *Sim) AddTenant(seed int64, n int) (TenantInfo, error) {
	return s.generateTenant(seed, n, true)
}

// AddMemberTenant is AddTenant with only enabled, licensed members: no
// guests, no disabled accounts, for tests that count an import exactly.
func (s *Sim) AddMemberTenant(seed int64, n int) (TenantInfo, error) {
	return s.generateTenant(seed, n, false)
}

func (s *Sim) generateTenant(seed int64, n int, mixed bool) (TenantInfo, error) {
	if n < 0 || n > 100000 {
		return TenantInfo{}, fmt.Errorf("user count %d must be 0..100000", n)
	}
	rng := rand.New(rand.NewPCG(uint64(s.opts.Seed), uint64(seed)))
	id := randomGUID(rng)
	if s.tenant(id) != nil {
		return TenantInfo{}, fmt.Errorf("tenant for seed %d exists already", seed)
	}

	word := companyWords[rng.IntN(len(companyWords))]
	slug := fmt.Sprintf("%s%d", asciiFold(strings.ToLower(word)), seed)
	domain := slug + ".example"
	t := &tenant{
		id: id, name: fmt.Sprintf("%s %d Oy", word, seed), domain: domain,
		adminEmail: "admin@" + domain, adminPassword: generatePassword(),
		spID: randomGUID(rng), app: AppPresent,
		roles: append([]string(nil), s.opts.Roles...), byID: make(map[string]*user, n),
	}

	gen := newDirectoryGen(rng, domain)
	gen.mixed = mixed
	for i := 0; i < n; i++ {
		t.appendUser(gen.user(i))
	}
	s.addTenant(t)
	return t.info(), nil
}

// appendUser adds u as a change, so that a delta started later sees it.
func (t *tenant) appendUser(u *user) {
	t.seq++
	u.changeSeq = t.seq
	t.users = append(t.users, u)
	t.byID[strings.ToLower(u.ID)] = u
}

// Users returns a tenant's current directory in creation order.
func (s *Sim) Users(tenantID string) ([]graph.User, error) {
	t := s.tenant(tenantID)
	if t == nil {
		return nil, fmt.Errorf("%w %q", ErrUnknownTenant, tenantID)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]graph.User, 0, len(t.users))
	for _, u := range t.users {
		if !u.deleted {
			out = append(out, u.User)
		}
	}
	return out, nil
}

// RemoveUser deletes a user: list reads leave it out and a users delta
// reports it as @removed.
func (s *Sim) RemoveUser(tenantID, userID string) error {
	return s.changeUser(tenantID, userID, func(u *user) { u.deleted = true })
}

// SetAccountEnabled enables or disables a user's account, which a users
// delta reports as a change.
func (s *Sim) SetAccountEnabled(tenantID, userID string, enabled bool) error {
	return s.changeUser(tenantID, userID, func(u *user) { u.AccountEnabled = enabled })
}

func (s *Sim) changeUser(tenantID, userID string, fn func(*user)) error {
	t := s.tenant(tenantID)
	if t == nil {
		return fmt.Errorf("%w %q", ErrUnknownTenant, tenantID)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	u := t.byID[strings.ToLower(userID)]
	if u == nil || u.deleted {
		return fmt.Errorf("%w %q", ErrUnknownUser, userID)
	}
	fn(u)
	t.seq++
	u.changeSeq = t.seq
	return nil
}

// SetPresence sets a user's own Teams presence (what the user is doing)
// and returns when the change took effect, so that a test or benchmark can
// measure how long OneSync takes to reflect it. availability and activity
// must be values Graph knows (see ValidAvailability and ValidActivity).
func (s *Sim) SetPresence(tenantID, userID, availability, activity string) (time.Time, error) {
	return s.setBase(tenantID, userID, presence.Presence{Availability: availability,
		Activity: activity, OutOfOffice: activity == "OutOfOffice"})
}

func (s *Sim) setBase(tenantID, userID string, p presence.Presence) (time.Time, error) {
	if !ValidAvailability(p.Availability) {
		return time.Time{}, fmt.Errorf("%w: availability %q", ErrBadPresence, p.Availability)
	}
	if !ValidActivity(p.Activity) {
		return time.Time{}, fmt.Errorf("%w: activity %q", ErrBadPresence, p.Activity)
	}
	t := s.tenant(tenantID)
	if t == nil {
		return time.Time{}, fmt.Errorf("%w %q", ErrUnknownTenant, tenantID)
	}

	t.mu.Lock()
	defer t.mu.Unlock()
	u := t.byID[strings.ToLower(userID)]
	if u == nil || u.deleted {
		return time.Time{}, fmt.Errorf("%w %q", ErrUnknownUser, userID)
	}
	if !u.licensed {
		return time.Time{}, fmt.Errorf("%w: %s", ErrNoLicence, userID)
	}
	now := time.Now()
	u.base = p
	u.changedAt = now
	return now, nil
}

// Presence returns a user's presence as Graph would report it now, and
// when it last changed.
func (s *Sim) Presence(tenantID, userID string) (presence.Presence, time.Time, error) {
	t := s.tenant(tenantID)
	if t == nil {
		return presence.Presence{}, time.Time{}, fmt.Errorf("%w %q", ErrUnknownTenant, tenantID)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	u := t.byID[strings.ToLower(userID)]
	if u == nil || u.deleted {
		return presence.Presence{}, time.Time{}, fmt.Errorf("%w %q", ErrUnknownUser, userID)
	}
	return u.effective(time.Now()), u.changedAt, nil
}

// effective is the presence Graph reports: PresenceUnknown without a
// licence; otherwise the user's own presence, unless an app session that
// has not expired ranks higher (DoNotDisturb > Busy > Available > Away).
func (u *user) effective(now time.Time) presence.Presence {
	if !u.licensed {
		return presence.Presence{Availability: "PresenceUnknown", Activity: "PresenceUnknown"}
	}
	if u.session != nil && now.Before(u.session.expires) &&
		rank(u.session.p.Availability) > rank(u.base.Availability) {
		return u.session.p
	}
	return u.base
}

func rank(availability string) int {
	switch availability {
	case "DoNotDisturb":
		return 4
	case "Busy", "BusyIdle":
		return 3
	case "Available", "AvailableIdle":
		return 2
	case "Away", "BeRightBack":
		return 1
	}
	return 0
}

var availabilities = map[string]bool{
	"Available": true, "AvailableIdle": true, "Away": true, "BeRightBack": true,
	"Busy": true, "BusyIdle": true, "DoNotDisturb": true, "Offline": true,
	"PresenceUnknown": true,
}

var activities = map[string]bool{
	"Available": true, "Away": true, "BeRightBack": true, "Busy": true,
	"DoNotDisturb": true, "InACall": true, "InAConferenceCall": true, "Inactive": true,
	"InAMeeting": true, "Offline": true, "OffWork": true, "OutOfOffice": true,
	"PresenceUnknown": true, "Presenting": true, "UrgentInterruptionsOnly": true,
}

// ValidAvailability reports whether a is one of Graph's nine availability
// values.
func ValidAvailability(a string) bool { return availabilities[a] }

// ValidActivity reports whether a is one of Graph's fifteen activity
// values.
func ValidActivity(a string) bool { return activities[a] }

// Name material for generated directories: common Finnish names.
var (
	givenNames = []string{"Aino", "Eino", "Helmi", "Väinö", "Sofia", "Leo", "Emma", "Oliver",
		"Aada", "Elias", "Olivia", "Onni", "Lilja", "Eetu", "Ella", "Juho", "Venla", "Niilo",
		"Maija", "Matti", "Päivi", "Jukka", "Riikka", "Sami", "Tuula", "Heikki", "Kaisa",
		"Ville", "Satu", "Jari", "Anu", "Petri", "Minna", "Kalle", "Sari", "Tapio"}
	surnames = []string{"Korhonen", "Virtanen", "Mäkinen", "Nieminen", "Mäkelä", "Hämäläinen",
		"Laine", "Heikkinen", "Koskinen", "Järvinen", "Lehtonen", "Lehtinen", "Saarinen",
		"Salminen", "Heinonen", "Niemi", "Heikkilä", "Kinnunen", "Salonen", "Turunen",
		"Salo", "Laitinen", "Tuominen", "Rantanen", "Karjalainen", "Jokinen", "Mattila",
		"Savolainen", "Lahtinen", "Ahonen"}
	jobTitles = []string{"Myyjä", "Asiakaspalvelija", "Insinööri", "Projektipäällikkö",
		"Kirjanpitäjä", "Huoltoteknikko", "Suunnittelija", "Esihenkilö", "Assistentti"}
	companyWords = []string{"Kaleva", "Pohjola", "Aurora", "Saimaa", "Tapiola", "Koivu",
		"Lumi", "Revontuli", "Kallio", "Järvi", "Metsä", "Virta"}
	mobilePrefixes = []string{"40", "41", "44", "45", "46", "50"}
)

// directoryGen makes realistic users for one tenant from one random source.
type directoryGen struct {
	rng    *rand.Rand
	domain string
	used   map[string]bool // mail local parts and phone numbers already given
	mixed  bool            // whether to make guests, disabled and unlicensed users
}

func newDirectoryGen(rng *rand.Rand, domain string) *directoryGen {
	return &directoryGen{rng: rng, domain: domain, used: make(map[string]bool)}
}

// user makes the i-th user: mostly enabled, licensed members; about 4 % are
// guests, 4 % disabled, 5 % without a Teams licence. Phones mix the
// international and the national Finnish format.
func (g *directoryGen) user(i int) *user {
	r := g.rng
	given := givenNames[r.IntN(len(givenNames))]
	sur := surnames[r.IntN(len(surnames))]
	local := g.unique(asciiFold(strings.ToLower(given + "." + sur)))

	u := &user{givenName: given, surname: sur, licensed: true,
		jobTitle: jobTitles[r.IntN(len(jobTitles))]}
	u.ID = randomGUID(r)
	u.DisplayName = given + " " + sur
	u.AccountEnabled = true
	u.UserType = "Member"
	u.Mail = local + "@" + g.domain
	u.UPN = u.Mail

	roll := r.IntN(100)
	if !g.mixed && roll < 13 {
		roll = 99
	}
	switch {
	case roll < 4:
		partner := fmt.Sprintf("partner%d.example", r.IntN(20))
		u.UserType = "Guest"
		u.Mail = local + "@" + partner
		u.UPN = strings.ReplaceAll(u.Mail, "@", "_") + "#EXT#@" + g.domain
		u.licensed = false
		u.jobTitle = ""
	case roll < 8:
		u.AccountEnabled = false
	case roll < 13:
		u.licensed = false
	case roll < 18:
		// A short sign-in name: the mail stays first.last.
		u.UPN = g.unique(asciiFold(strings.ToLower(given[:1]+sur))) + "@" + g.domain
	case roll < 21:
		u.Mail = ""
	}

	if u.UserType == "Member" {
		if r.IntN(100) < 80 {
			u.BusinessPhones = []string{g.businessPhone()}
		}
		if r.IntN(100) < 70 {
			u.MobilePhone = g.mobilePhone()
		}
	}

	u.base = presence.Presence{Availability: "Available", Activity: "Available"}
	switch roll := r.IntN(10); {
	case roll == 0:
		u.base = presence.Presence{Availability: "Away", Activity: "Away"}
	case roll == 1:
		u.base = presence.Presence{Availability: "Offline", Activity: "OffWork"}
	case roll == 2:
		u.base = presence.Presence{Availability: "Busy", Activity: "InAMeeting"}
	}
	u.changedAt = time.Now()
	return u
}

func (g *directoryGen) unique(base string) string {
	name := base
	for n := 2; g.used[name]; n++ {
		name = fmt.Sprintf("%s%d", base, n)
	}
	g.used[name] = true
	return name
}

func (g *directoryGen) businessPhone() string {
	for {
		n := 1000000 + g.rng.IntN(9000000)
		if g.used["b"+fmt.Sprint(n)] {
			continue
		}
		g.used["b"+fmt.Sprint(n)] = true
		s := fmt.Sprint(n)
		if g.rng.IntN(4) == 0 {
			return fmt.Sprintf("09 %s %s", s[:3], s[3:])
		}
		return fmt.Sprintf("+358 9 %s %s", s[:3], s[3:])
	}
}

func (g *directoryGen) mobilePhone() string {
	for {
		prefix := mobilePrefixes[g.rng.IntN(len(mobilePrefixes))]
		n := 1000000 + g.rng.IntN(9000000)
		key := "m" + prefix + fmt.Sprint(n)
		if g.used[key] {
			continue
		}
		g.used[key] = true
		s := fmt.Sprint(n)
		if g.rng.IntN(3) == 0 {
			return fmt.Sprintf("0%s %s %s", prefix, s[:3], s[3:])
		}
		return fmt.Sprintf("+358 %s %s %s", prefix, s[:3], s[3:])
	}
}

// randomGUID draws a version 4 GUID from r, so that seeded runs repeat.
func randomGUID(r *rand.Rand) string {
	var b [16]byte
	for i := range b {
		b[i] = byte(r.UintN(256))
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// asciiFold turns Finnish letters into the ASCII that mail addresses use.
func asciiFold(s string) string {
	return strings.NewReplacer("ä", "a", "ö", "o", "å", "a", "Ä", "A", "Ö", "O", "Å", "A").
		Replace(s)
}

// generatePassword makes an admin password at run time; it is never
// stored anywhere but in memory.
func generatePassword() string {
	return "Sim-" + randomHex(9)
}
