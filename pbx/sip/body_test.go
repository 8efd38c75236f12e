package sip

import (
	"bytes"
	"encoding/xml"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/setera/onesync/presence"
)

// wellFormed decodes every token of doc and fails on the first error.
func wellFormed(t *testing.T, doc []byte) {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(doc))
	for {
		_, err := d.Token()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v\n%s", err, doc)
		}
	}
}

func TestDialogInfoBody(t *testing.T) {
	for s, want := range map[presence.LineState]string{
		presence.Busy:         "confirmed",
		presence.DoNotDisturb: "confirmed",
		presence.Away:         "terminated",
		presence.Available:    "terminated",
		presence.Offline:      "terminated",
	} {
		body := dialogInfoBody("sip:201@pbx.example", 7, dialogID(3), s)
		wellFormed(t, body)

		var doc struct {
			XMLName xml.Name `xml:"urn:ietf:params:xml:ns:dialog-info dialog-info"`
			Version string   `xml:"version,attr"`
			State   string   `xml:"state,attr"`
			Entity  string   `xml:"entity,attr"`
			Dialogs []struct {
				ID    string `xml:"id,attr"`
				State string `xml:"state"`
			} `xml:"dialog"`
		}
		if err := xml.Unmarshal(body, &doc); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		if doc.Entity != "sip:201@pbx.example" || doc.Version != "7" || doc.State != "full" {
			t.Errorf("%s: dialog-info attributes %+v", s, doc)
		}
		if len(doc.Dialogs) != 1 || doc.Dialogs[0].State != want || doc.Dialogs[0].ID != "onesync-3" {
			t.Errorf("%s: dialogs %+v, want one onesync-3 in state %s", s, doc.Dialogs, want)
		}
	}
}

func TestPIDFBody(t *testing.T) {
	type person struct {
		Activities struct {
			Inner []struct {
				XMLName xml.Name
			} `xml:",any"`
		} `xml:"urn:ietf:params:xml:ns:pidf:rpid activities"`
		Note string `xml:"urn:ietf:params:xml:ns:pidf:data-model note"`
	}
	var doc struct {
		XMLName xml.Name `xml:"urn:ietf:params:xml:ns:pidf presence"`
		Entity  string   `xml:"entity,attr"`
		Basic   string   `xml:"tuple>status>basic"`
		Person  person   `xml:"urn:ietf:params:xml:ns:pidf:data-model person"`
	}
	for _, tc := range []struct {
		state    presence.LineState
		reason   string
		basic    string
		activity string // "" for none
	}{
		{presence.Busy, "InACall", "open", "on-the-phone"},
		{presence.Busy, "InAConferenceCall", "open", "on-the-phone"},
		{presence.Busy, "InAMeeting", "open", "meeting"},
		{presence.Busy, "Presenting", "open", "meeting"},
		{presence.Busy, "Busy", "open", "busy"},
		{presence.DoNotDisturb, "Focusing", "open", "busy"},
		{presence.Away, "BeRightBack", "open", "away"},
		{presence.Available, "", "open", ""},
		{presence.Offline, "", "closed", ""},
	} {
		body := pidfBody("sip:201@pbx.example", tc.state, tc.reason)
		wellFormed(t, body)
		doc.Person = person{}
		if err := xml.Unmarshal(body, &doc); err != nil {
			t.Fatalf("%s/%s: %v", tc.state, tc.reason, err)
		}
		if doc.Entity != "sip:201@pbx.example" || doc.Basic != tc.basic {
			t.Errorf("%s/%s: entity %q basic %q", tc.state, tc.reason, doc.Entity, doc.Basic)
		}
		var acts []string
		for _, a := range doc.Person.Activities.Inner {
			if a.XMLName.Space != "urn:ietf:params:xml:ns:pidf:rpid" {
				t.Errorf("%s: activity in namespace %q", tc.state, a.XMLName.Space)
			}
			acts = append(acts, a.XMLName.Local)
		}
		if got := strings.Join(acts, ","); got != tc.activity {
			t.Errorf("%s/%s: activities %q, want %q", tc.state, tc.reason, got, tc.activity)
		}
		if doc.Person.Note == "" {
			t.Errorf("%s: no note", tc.state)
		}
	}
}

func TestBodyEscapesEntity(t *testing.T) {
	odd := `sip:a"b<c>&d@pbx.example`
	wellFormed(t, dialogInfoBody(odd, 1, `x"y`, presence.Busy))
	wellFormed(t, pidfBody(odd, presence.Busy, "<call>"))
}

func TestConfigValidate(t *testing.T) {
	ok := Config{Server: "127.0.0.1:5060", Domain: "pbx.example"}
	if err := ok.Validate(); err != nil {
		t.Fatalf("minimal config: %v", err)
	}
	for name, mutate := range map[string]func(*Config){
		"no server":           func(c *Config) { c.Server = "" },
		"no port":             func(c *Config) { c.Server = "127.0.0.1" },
		"port out of range":   func(c *Config) { c.Server = "127.0.0.1:70000" },
		"no host":             func(c *Config) { c.Server = ":5060" },
		"bad transport":       func(c *Config) { c.Transport = "sctp" },
		"tls config with udp": func(c *Config) { c.TLSConfig = tlsConfig(ok) },
		"no domain":           func(c *Config) { c.Domain = "" },
		"domain with scheme":  func(c *Config) { c.Domain = "sip:pbx.example" },
		"domain with user":    func(c *Config) { c.Domain = "a@pbx.example" },
		"expires too short":   func(c *Config) { c.Expires = time.Second },
		"expires fraction":    func(c *Config) { c.Expires = 3500 * time.Millisecond },
		"negative timeout":    func(c *Config) { c.Timeout = -time.Second },
		"user no password":    func(c *Config) { c.Username = "onesync" },
		"password no user":    func(c *Config) { c.Password = "x" },
		"quote in user":       func(c *Config) { c.Username, c.Password = `a"b`, "x" },
	} {
		c := ok
		mutate(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
		if _, err := New(c); err == nil {
			t.Errorf("%s: New accepted", name)
		}
	}
	for _, good := range []Config{
		{Server: "presence.example:5061", Transport: TLS, Domain: "pbx.example"},
		{Server: "[::1]:5060", Transport: "TCP", Domain: "[::1]"},
		{Server: "127.0.0.1:5060", Domain: "10.0.0.1", Username: "u", Password: "p",
			Expires: 10 * time.Minute},
	} {
		if err := good.Validate(); err != nil {
			t.Errorf("%+v: %v", good, err)
		}
	}
}

func TestConfigStringHidesPassword(t *testing.T) {
	c := Config{Server: "127.0.0.1:5060", Domain: "pbx.example", Username: "onesync",
		Password: "do-not-print-me"}
	if s := c.String(); strings.Contains(s, "do-not-print-me") || !strings.Contains(s, "onesync") {
		t.Errorf("String() = %q", s)
	}
}
