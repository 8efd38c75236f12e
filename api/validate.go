package api

import (
	"net/mail"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Field limits. Anything longer is refused with a message, never cut.
const (
	maxName     = 100
	maxEmail    = 254
	maxPhone    = 32
	maxPBXOrg   = 64
	maxNote     = 500
	minPassword = 12
	maxPassword = 72 // bcrypt ignores bytes after the 72nd
)

var (
	pbxOrgPattern = regexp.MustCompile(`^[A-Za-z0-9-]+$`)
	phonePattern  = regexp.MustCompile(`^\+?[0-9 ()./-]+$`)
	tenantPattern = regexp.MustCompile(
		`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
)

// form is what a user typed into a form and what is wrong with it. Values
// are shown again after a validation error; passwords never are.
type form struct {
	Values map[string]string
	Errors map[string]string
	// Error is a message about the whole form, shown above its fields.
	Error string
}

func newForm() *form {
	return &form{Values: map[string]string{}, Errors: map[string]string{}}
}

// Valid reports whether no field has an error.
func (f *form) Valid() bool { return len(f.Errors) == 0 && f.Error == "" }

// set records a trimmed value; secret fields are checked but not kept.
func (f *form) set(name, value string, secret bool) string {
	if !secret {
		value = strings.TrimSpace(value)
		f.Values[name] = value
	}
	return value
}

func (f *form) fail(name, msg string) {
	if _, ok := f.Errors[name]; !ok {
		f.Errors[name] = msg
	}
}

// text checks a required single-line text field.
func (f *form) text(name, value, label string, max int) {
	switch {
	case value == "":
		f.fail(name, "Enter the "+label+".")
	case !utf8.ValidString(value) || hasControl(value):
		f.fail(name, "The "+label+" contains characters that cannot be used.")
	case utf8.RuneCountInString(value) > max:
		f.fail(name, "The "+label+" is too long: use at most "+strconv.Itoa(max)+" characters.")
	}
}

// email checks a required email address.
func (f *form) email(name, value string) {
	if value == "" {
		f.fail(name, "Enter an email address.")
		return
	}
	if len(value) > maxEmail {
		f.fail(name, "The email address is too long: use at most "+strconv.Itoa(maxEmail)+" characters.")
		return
	}
	if !validEmail(value) {
		f.fail(name, "Enter an email address like name@example.com.")
	}
}

func validEmail(v string) bool {
	a, err := mail.ParseAddress(v)
	if err != nil || a.Address != v || a.Name != "" {
		return false
	}
	at := strings.LastIndex(v, "@")
	domain := v[at+1:]
	return at > 0 && strings.Contains(domain, ".") && !strings.HasSuffix(domain, ".") &&
		!strings.ContainsAny(v, " \t")
}

// phone checks a required phone number: digits with the usual separators.
func (f *form) phone(name, value string) {
	if value == "" {
		f.fail(name, "Enter a phone number.")
		return
	}
	if len(value) > maxPhone {
		f.fail(name, "The phone number is too long: use at most "+strconv.Itoa(maxPhone)+" characters.")
		return
	}
	digits := 0
	for _, r := range value {
		if unicode.IsDigit(r) {
			digits++
		}
	}
	if !phonePattern.MatchString(value) || digits < 5 || digits > 15 {
		f.fail(name, "Enter a phone number like +358 40 123 4567.")
	}
}

// pbxOrg checks the OneCloud customer id.
func (f *form) pbxOrg(name, value string) {
	switch {
	case value == "":
		f.fail(name, "Enter your OneCloud customer id.")
	case len(value) > maxPBXOrg:
		f.fail(name, "The customer id is too long: use at most "+strconv.Itoa(maxPBXOrg)+" characters.")
	case !pbxOrgPattern.MatchString(value):
		f.fail(name, "Use only letters, digits and hyphens, as in your OneCloud contract.")
	}
}

// newPassword checks a password being chosen and its confirmation.
func (f *form) newPassword(name, value, confirmName, confirm string) {
	switch {
	case value == "":
		f.fail(name, "Choose a password.")
	case utf8.RuneCountInString(value) < minPassword:
		f.fail(name, "Use at least "+strconv.Itoa(minPassword)+" characters.")
	case len(value) > maxPassword:
		f.fail(name, "The password is too long: use at most "+strconv.Itoa(maxPassword)+" bytes.")
	}
	if confirm == "" {
		f.fail(confirmName, "Type the password again.")
	} else if confirm != value {
		f.fail(confirmName, "The two passwords differ: type the same password twice.")
	}
}

// note checks an optional or required free-text note.
func (f *form) note(name, value string, required bool) {
	switch {
	case value == "" && required:
		f.fail(name, "Write a note: the organisation's admin reads it.")
	case !utf8.ValidString(value):
		f.fail(name, "The note contains characters that cannot be used.")
	case utf8.RuneCountInString(value) > maxNote:
		f.fail(name, "The note is too long: use at most "+strconv.Itoa(maxNote)+" characters.")
	}
}

func hasControl(s string) bool {
	for _, r := range s {
		if unicode.IsControl(r) {
			return true
		}
	}
	return false
}
